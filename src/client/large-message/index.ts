// In-line large messages (issue 4): `_lm` segments in li-apache-kafka-clients' V3 header format,
// split by LargeMessageProducer and reassembled by LargeMessageConsumer.
export * from './segment.ts'
export * from './assembler.ts'
export * from './producer.ts'
export * from './consumer.ts'
