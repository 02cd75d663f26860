// The records Kafka writes to __consumer_offsets (group-coordinator's OffsetCommitKey/Value and
// GroupMetadataKey/Value), so tools that read that topic themselves (Burrow) keep working.
// Each key and value starts with an int16 version, followed by the schema of that version.
import { groupMetadataKeySchema } from '../../protocol/messages/group-metadata-key.ts'
import { type GroupMetadataValue, groupMetadataValueSchema } from '../../protocol/messages/group-metadata-value.ts'
import { offsetCommitKeySchema } from '../../protocol/messages/offset-commit-key.ts'
import { type OffsetCommitValue, offsetCommitValueSchema } from '../../protocol/messages/offset-commit-value.ts'
import { Reader } from '../../protocol/reader.ts'
import { decode, encode, type MessageSchema } from '../../protocol/schema.ts'
import { Writer } from '../../protocol/writer.ts'

export const OFFSETS_TOPIC = '__consumer_offsets'

/** Key version 1 (Kafka 3.8 writes 1; 0 has the same layout). */
const OFFSET_KEY_VERSION = 1
/** Value version 3 (Kafka 3.8's, and one Burrow 1.2.1 reads). */
const OFFSET_VALUE_VERSION = 3
const GROUP_KEY_VERSION = 2

function versioned(schema: MessageSchema, version: number, value: unknown): Buffer {
  const w = new Writer()
  w.writeInt16(version)
  encode(schema, version, value, w)
  return w.toBuffer()
}

export function offsetCommitKey(group: string, topic: string, partition: number): Buffer {
  return versioned(offsetCommitKeySchema, OFFSET_KEY_VERSION, { group, topic, partition })
}

export function offsetCommitValue(v: {
  offset: number
  leaderEpoch: number
  metadata: string
  commitTimestamp: number
}): Buffer {
  return versioned(offsetCommitValueSchema, OFFSET_VALUE_VERSION, v)
}

export function groupMetadataKey(group: string): Buffer {
  return versioned(groupMetadataKeySchema, GROUP_KEY_VERSION, { group })
}

/**
 * Version 1 unless a member is static: Burrow 1.2.1 reads group metadata only in versions 0 and
 * 1 (for partition owners), and version 3 is the first that carries group.instance.id.
 */
export function groupMetadataValue(v: GroupMetadataValue): Buffer {
  const version = v.members.some((m) => m.groupInstanceId !== null) ? 3 : 1
  return versioned(groupMetadataValueSchema, version, v)
}

export type OffsetsRecord =
  | { type: 'offset'; group: string; topic: string; partition: number; value: OffsetCommitValue | null }
  | { type: 'group'; group: string; value: GroupMetadataValue | null }
  | { type: 'unknown'; keyVersion: number }

/** Decodes one record of the topic; throws ProtocolError on malformed bytes. */
export function decodeOffsetsRecord(key: Buffer, value: Buffer | null): OffsetsRecord {
  const kr = new Reader(key)
  const keyVersion = kr.readInt16()
  const readValue = <T>(schema: MessageSchema): T | null => {
    if (value === null || value.length === 0) return null
    const vr = new Reader(value)
    const version = vr.readInt16()
    return decode<T>(schema, Math.min(version, schema.validVersions[1]), vr)
  }
  if (keyVersion === 0 || keyVersion === 1) {
    const k = decode<{ group: string; topic: string; partition: number }>(offsetCommitKeySchema, keyVersion, kr)
    return { type: 'offset', ...k, value: readValue<OffsetCommitValue>(offsetCommitValueSchema) }
  }
  if (keyVersion === 2) {
    const k = decode<{ group: string }>(groupMetadataKeySchema, 2, kr)
    return { type: 'group', group: k.group, value: readValue<GroupMetadataValue>(groupMetadataValueSchema) }
  }
  return { type: 'unknown', keyVersion }
}

/** Java's String.hashCode, so a group lands on the partition Kafka would put it in. */
export function javaStringHash(s: string): number {
  let h = 0
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0
  return h
}

/** Kafka's GroupMetadataManager.partitionFor: Utils.abs(hash) % partitions, abs(MIN_VALUE) = 0. */
export function partitionForGroup(groupId: string, partitions: number): number {
  const h = javaStringHash(groupId)
  return (h === -2147483648 ? 0 : Math.abs(h)) % partitions
}
