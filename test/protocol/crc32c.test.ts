import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { crc32c, crc32cImplementation, crc32cJs } from '../../src/protocol/crc32c.ts'

// Bit-at-a-time reference implementation to check the sliced tables against.
function reference(data: Uint8Array, start = 0, end = data.length): number {
  let crc = 0xffffffff
  for (let i = start; i < end; i++) {
    crc ^= data[i]
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}

test('known CRC-32C vectors (RFC 3720 and common check values)', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
  assert.equal(crc32c(Buffer.alloc(0)), 0)
  assert.equal(crc32c(Buffer.from('a')), 0xc1d04330)
  assert.equal(crc32c(Buffer.from('The quick brown fox jumps over the lazy dog')), 0x22620404)
  assert.equal(crc32c(Buffer.alloc(32, 0)), 0x8a9136aa)
  assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43)
  assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e)
  assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i))), 0x113fdb5c)
})

test('matches the bitwise reference on random data, lengths and sub-ranges', () => {
  for (let n = 0; n < 300; n++) {
    const data = randomBytes(Math.floor(Math.random() * 200))
    assert.equal(crc32c(data), reference(data))
    const start = Math.floor(Math.random() * (data.length + 1))
    const end = start + Math.floor(Math.random() * (data.length - start + 1))
    assert.equal(crc32c(data, start, end), reference(data, start, end), `range [${start}, ${end}) of ${data.length}`)
  }
})

test('sub-range equals the CRC of the copied slice, also for unaligned views', () => {
  const data = randomBytes(1000)
  assert.equal(crc32c(data, 21, 977), crc32c(Buffer.from(data.subarray(21, 977))))
  const view = new Uint8Array(data.buffer, data.byteOffset + 3, 500)
  assert.equal(crc32c(view), reference(view))
})

test('out-of-range bounds are clamped', () => {
  const data = Buffer.from('123456789')
  assert.equal(crc32c(data, -5, 100), 0xe3069283)
  assert.equal(crc32c(data, 5, 2), 0)
})

test('the native and portable implementations agree on large inputs and sub-ranges', () => {
  assert.equal(crc32cImplementation, 'native', '@node-rs/crc32 is a dependency and should load here')
  for (let n = 0; n < 200; n++) {
    const data = randomBytes(256 + Math.floor(Math.random() * 20000))
    const start = Math.floor(Math.random() * 64)
    const end = data.length - Math.floor(Math.random() * 64)
    assert.equal(crc32c(data, start, end), crc32cJs(data, start, end))
    assert.equal(crc32c(data), reference(data))
  }
})
