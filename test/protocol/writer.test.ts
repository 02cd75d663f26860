import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Reader } from '../../src/protocol/reader.ts'
import { Writer } from '../../src/protocol/writer.ts'
import { ProtocolError } from '../../src/protocol/errors.ts'

void test('unsigned varints round-trip at their byte boundaries', () => {
  for (const v of [0, 1, 127, 128, 16383, 16384, 2 ** 21 - 1, 2 ** 21, 2 ** 28, 2 ** 32 - 1]) {
    const w = new Writer()
    w.writeUVarint(v)
    const r = new Reader(w.toBuffer())
    assert.equal(r.readUVarint(), v)
    assert.equal(r.remaining, 0)
  }
})

void test('a varint longer than five bytes is refused', () => {
  assert.throws(() => new Reader(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01])).readUVarint(), ProtocolError)
})

void test('large byte fields become separate chunks without copying', () => {
  const big = Buffer.alloc(4096, 7)
  const w = new Writer()
  w.writeInt32(1).writeBytes(big).writeInt16(2)
  const chunks = w.toChunks()
  assert.ok(chunks.includes(big))
  const all = w.toBuffer()
  assert.equal(all.length, 4 + 4 + 4096 + 2)
  const r = new Reader(all)
  assert.equal(r.readInt32(), 1)
  assert.deepEqual(r.readBytes(), big)
  assert.equal(r.readInt16(), 2)
})

void test('strings: null, empty, multi-byte, and negative lengths', () => {
  const w = new Writer()
  w.writeString(null).writeString('').writeString('café').writeCompactString(null).writeCompactString('ü')
  const r = new Reader(w.toBuffer())
  assert.equal(r.readString(), null)
  assert.equal(r.readString(), '')
  assert.equal(r.readString(), 'café')
  assert.equal(r.readCompactString(), null)
  assert.equal(r.readCompactString(), 'ü')
  assert.throws(() => new Reader(Buffer.from([0xff, 0xfe])).readString(), ProtocolError)
  assert.throws(() => new Reader(Buffer.from([0x00, 0x05, 0x61])).readString(), ProtocolError)
})
