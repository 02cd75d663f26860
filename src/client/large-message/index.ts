// In-line large messages: `_lm` segments in li-apache-kafka-clients' V3 header format
// (docs/reference/anchors.md §4.1), split by LargeMessageProducer and reassembled by
// LargeMessageConsumer.
export * from './segment.ts'
export * from './assembler.ts'
export * from './producer.ts'
export * from './consumer.ts'
