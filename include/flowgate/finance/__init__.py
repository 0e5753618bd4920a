"""Flow 2, daily financial reporting: core banking → SOX gates → audited finance mart.

Modules: ``generator`` (the synthetic core-banking source and its schema,
``source_schema.sql``), ``extract`` (one business date into a staging schema),
``transform`` (the reporting tables), ``reconcile`` (the to-the-cent gate) and
``pipeline`` (the steps the DAG runs). Nothing is imported here: DAG files import this
package while parsing and must stay cheap.
"""
