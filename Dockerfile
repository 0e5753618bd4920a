# syntax=docker/dockerfile:1
# FlowGate's Airflow image, used by docker-compose.yaml for the Airflow components and the
# alert sink: the official Airflow image + a JRE for spark-submit + the pinned
# requirements + the `flowgate` package + Spark's Kafka connector jars.
#
# The FROM version must equal the apache-airflow pin in requirements.txt, and the Maven
# stage resolves the same pom `make setup` uses (tests/dags/test_compose.py checks both).
#
# Astro CLI: the repo has the Astro project layout (dags/, include/, plugins/,
# requirements.txt, packages.txt, .astro/), but `astro dev start` is built around an Astro
# Runtime base image (FROM astrocrpublic.azurecr.io/runtime:<version>), whose ONBUILD steps
# install packages.txt and requirements.txt and copy the project to /usr/local/airflow.
# This file deliberately uses the official image instead; to run under Astro, swap the
# final FROM for the Runtime release that ships Airflow 3.3.2 and keep only the steps that
# the Runtime does not do for you (the Kafka connector jars and FLOWGATE_SPARK_JARS).

# --- Spark's Kafka connector (pyspark bundles none of it), resolved from Maven Central ----
FROM maven:3-eclipse-temurin-17 AS spark-jars
COPY include/flowgate/devstack/jars/spark-kafka.pom.xml /build/spark-kafka.pom.xml
RUN mvn --batch-mode --quiet -f /build/spark-kafka.pom.xml dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory=/jars/spark-kafka
# S3A for the lake: hadoop-aws + the AWS SDK v2 modules it loads, not the SDK's 686 MB bundle.
COPY include/flowgate/devstack/jars/spark-s3.pom.xml /build/spark-s3.pom.xml
RUN mvn --batch-mode --quiet -f /build/spark-s3.pom.xml dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory=/jars/spark-s3

# --- The Airflow image --------------------------------------------------------------------
FROM apache/airflow:3.3.2-python3.11

USER root
# OS packages from packages.txt, the list Astro installs too: a headless JRE, which
# spark-submit needs to start the Spark driver. (Slim Debian images lack the man-page
# folder the JRE's install script links into, hence the mkdir.)
COPY packages.txt /tmp/packages.txt
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && grep -Ev '^[[:space:]]*(#|$)' /tmp/packages.txt | xargs apt-get install -y --no-install-recommends \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /tmp/packages.txt

# FLOWGATE_HOME: gate evidence, the UI password file, the alert sink's file. Created here,
# owned by airflow, so a named volume mounted on it starts writable for the airflow user.
ENV FLOWGATE_HOME=/opt/flowgate/state
RUN install -d -o airflow -g root -m 0775 /opt/flowgate "${FLOWGATE_HOME}"
# The tokenizer's keys (private: its own volume, mounted in the tokenizer only) and the
# public key it exports for the gateway (a volume the Airflow containers mount read-only).
# Created here, owned by airflow, so the named volumes mounted on them start writable.
RUN install -d -o airflow -g root -m 0700 /opt/flowgate/tokenizer/keys \
    && install -d -o airflow -g root -m 0755 /opt/flowgate/tokenizer/public

# The connector jars. spark-submit expands the glob itself (--jars accepts globs), so the
# exact kafka-clients / commons-pool2 versions Maven picked need not be repeated here.
# The no-Docker stack sets the same variable to the comma-separated list of the same jars.
COPY --from=spark-jars /jars/spark-kafka /opt/flowgate/jars/spark-kafka
ENV FLOWGATE_SPARK_JARS=/opt/flowgate/jars/spark-kafka/*.jar
COPY --from=spark-jars /jars/spark-s3 /opt/flowgate/jars/spark-s3
ENV FLOWGATE_SPARK_S3_JARS=/opt/flowgate/jars/spark-s3/*.jar

USER airflow
# The pinned requirements, as the Airflow image docs prescribe: installed as the airflow
# user, with apache-airflow held at the image's own version, so a pin that disagrees with
# the base image fails the build instead of silently replacing Airflow.
COPY --chown=airflow:root requirements.txt /opt/flowgate/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/flowgate/requirements.txt

# The project package, editable: `import flowgate` and the `flowgate` CLI resolve to
# /opt/airflow/include, which docker-compose.yaml bind-mounts with the working tree. The
# code finds spark_jobs/ next to include/ (flowgate.common.spark.spark_job).
COPY --chown=airflow:root pyproject.toml /opt/airflow/pyproject.toml
COPY --chown=airflow:root include /opt/airflow/include
RUN pip install --no-cache-dir --no-deps -e /opt/airflow

COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
COPY --chown=airflow:root spark_jobs /opt/airflow/spark_jobs
# The reviewed GX suites: flowgate.common.gx_gate finds expectations/ next to include/.
COPY --chown=airflow:root expectations /opt/airflow/expectations
# The log alert rules: flowgate.logs.rules finds alert_rules/ next to include/.
COPY --chown=airflow:root alert_rules /opt/airflow/alert_rules

# Recorded in every audit row (flowgate.common.version). CI/prod builds pass the commit:
#   docker build --build-arg FLOWGATE_CODE_VERSION=$(git rev-parse --short=12 HEAD) .
# Left empty, the code reports "unknown" (the image has no .git).
ARG FLOWGATE_CODE_VERSION=""
ENV FLOWGATE_CODE_VERSION=${FLOWGATE_CODE_VERSION}
