/*
 * A librdkafka mock cluster (rdkafka_mock.h) driven over stdin, so tests can run a real
 * multi-broker Kafka on 127.0.0.1 and move leaders, take brokers down and inject errors.
 * Built and started by test/helpers/mock-kafka.ts.
 *
 * Usage: mock-cluster [brokers]   (default 3)
 * Prints the bootstrap address on one line, then reads one command per line and answers one
 * line, `ok` or `error <text>`:
 *   topic <name> <partitions> <replication>
 *   leader <topic> <partition> <broker>
 *   down <broker> | up <broker>
 *   errors <apikey> <code> [<code>...]      pushed onto the cluster-wide error stack of the API
 *   coordinator <type> <key> <broker>       type is "group" or "transaction"
 *   rtt <broker> <ms>
 *   rack <broker> <rack>
 *   apiversion <apikey> <min> <max>        the versions ApiVersions offers (-1 -1: the API is not offered)
 *   quit
 * Exits when stdin closes.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ERRORS 64

static void answer(rd_kafka_resp_err_t err) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    printf("ok\n");
  else
    printf("error %s\n", rd_kafka_err2str(err));
  fflush(stdout);
}

static void fail(const char *text) {
  printf("error %s\n", text);
  fflush(stdout);
}

int main(int argc, char **argv) {
  int brokers = argc > 1 ? atoi(argv[1]) : 3;
  if (brokers < 1) {
    fprintf(stderr, "mock-cluster: broker count must be at least 1\n");
    return 2;
  }
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  /* The handle only hosts the mock cluster's thread and never connects anywhere: its notice that
   * no bootstrap.servers is set is noise, so only warnings and worse are logged (to stderr). */
  rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr));
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (rk == NULL) {
    fprintf(stderr, "mock-cluster: rd_kafka_new: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (mc == NULL) {
    fprintf(stderr, "mock-cluster: rd_kafka_mock_cluster_new failed\n");
    return 1;
  }
  printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);

  char line[4096];
  while (fgets(line, sizeof(line), stdin) != NULL) {
    char *args[3 + MAX_ERRORS];
    int n = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok != NULL && n < 3 + MAX_ERRORS; tok = strtok(NULL, " \t\r\n"))
      args[n++] = tok;
    if (n == 0) {
      fail("empty command");
      continue;
    }
    const char *cmd = args[0];
    if (strcmp(cmd, "quit") == 0) {
      printf("ok\n");
      fflush(stdout);
      break;
    } else if (strcmp(cmd, "topic") == 0 && n == 4) {
      answer(rd_kafka_mock_topic_create(mc, args[1], atoi(args[2]), atoi(args[3])));
    } else if (strcmp(cmd, "leader") == 0 && n == 4) {
      answer(rd_kafka_mock_partition_set_leader(mc, args[1], atoi(args[2]), atoi(args[3])));
    } else if (strcmp(cmd, "down") == 0 && n == 2) {
      answer(rd_kafka_mock_broker_set_down(mc, atoi(args[1])));
    } else if (strcmp(cmd, "up") == 0 && n == 2) {
      answer(rd_kafka_mock_broker_set_up(mc, atoi(args[1])));
    } else if (strcmp(cmd, "errors") == 0 && n >= 3) {
      rd_kafka_resp_err_t errs[MAX_ERRORS];
      size_t cnt = 0;
      for (int i = 2; i < n; i++) errs[cnt++] = (rd_kafka_resp_err_t)atoi(args[i]);
      rd_kafka_mock_push_request_errors_array(mc, (int16_t)atoi(args[1]), cnt, errs);
      answer(RD_KAFKA_RESP_ERR_NO_ERROR);
    } else if (strcmp(cmd, "coordinator") == 0 && n == 4) {
      answer(rd_kafka_mock_coordinator_set(mc, args[1], args[2], atoi(args[3])));
    } else if (strcmp(cmd, "rtt") == 0 && n == 3) {
      answer(rd_kafka_mock_broker_set_rtt(mc, atoi(args[1]), atoi(args[2])));
    } else if (strcmp(cmd, "rack") == 0 && n == 3) {
      answer(rd_kafka_mock_broker_set_rack(mc, atoi(args[1]), args[2]));
    } else if (strcmp(cmd, "apiversion") == 0 && n == 4) {
      answer(rd_kafka_mock_set_apiversion(mc, (int16_t)atoi(args[1]), (int16_t)atoi(args[2]), (int16_t)atoi(args[3])));
    } else {
      fail("unknown command or wrong number of arguments");
    }
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
