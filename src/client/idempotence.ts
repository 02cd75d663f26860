// Options every idempotent @platformatic/kafka Producer we create must carry.
//
// @platformatic/kafka 2.12.1 sends InitProducerId with the client-level `producerId` and
// `producerEpoch` options, defaulting to 0 / 0 when they are absent. Kafka's protocol asks for
// -1 / -1 on a first init (0 / 0 names an existing producer id 0 whose epoch should be bumped):
// Apache Kafka lets it pass for a non-transactional producer, but a stricter broker (librdkafka's
// mock cluster, test/mock-kafka/) answers UNKNOWN_PRODUCER_ID and the producer can never send.
// The library only forbids producerId/producerEpoch in send() options, not in the constructor's,
// and re-initialises with these same values after a failure, so every init is a first init.
export const FIRST_INIT_PRODUCER = { producerId: -1n, producerEpoch: -1 } as const
