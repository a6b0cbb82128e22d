// Creates the local stack's Kafka topics in one JVM, for deploy/local/kafka.sh
// (the batch form of TopicCommand --create --if-not-exists). Run with the
// source launcher: java -cp 'libs/*' CreateTopics.java BOOTSTRAP name:partitions...
// Prints "created NAME" or "exists NAME" per topic; exit 1 if any create failed.

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.errors.TopicExistsException;

public class CreateTopics {
    public static void main(String[] args) throws InterruptedException {
        if (args.length < 2) {
            System.err.println("usage: CreateTopics BOOTSTRAP name:partitions...");
            System.exit(64);
        }
        List<NewTopic> topics = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            int colon = args[i].lastIndexOf(':');
            if (colon <= 0) {
                System.err.println("CreateTopics: expected name:partitions, got " + args[i]);
                System.exit(64);
            }
            topics.add(new NewTopic(args[i].substring(0, colon),
                    Integer.parseInt(args[i].substring(colon + 1)), (short) 1));
        }

        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        int failed = 0;
        try (Admin admin = Admin.create(props)) {
            Map<String, KafkaFuture<Void>> results = admin.createTopics(topics).values();
            for (NewTopic topic : topics) {
                try {
                    results.get(topic.name()).get();
                    System.out.println("created " + topic.name());
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof TopicExistsException) {
                        System.out.println("exists " + topic.name());
                    } else {
                        System.err.println("CreateTopics: " + topic.name() + ": " + e.getCause());
                        failed++;
                    }
                }
            }
        }
        System.exit(failed == 0 ? 0 : 1);
    }
}
