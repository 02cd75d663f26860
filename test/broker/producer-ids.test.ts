// The producer id allocator the Broker owns: ids never repeat across instances on one data
// directory, and a closed allocator hands out none (its directory may belong to another broker).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ProducerIdAllocator } from '../../src/broker/producer-ids.ts'
import { removeDir, tempDir } from '../helpers/broker-process.ts'

test('a closed allocator refuses; the next one on the directory continues after its block', () => {
  const dir = tempDir('producer-ids')
  try {
    const first = new ProducerIdAllocator(dir, 10)
    assert.deepEqual([first.allocate(), first.allocate()], [0, 1])
    first.close()
    assert.throws(() => first.allocate(), /closed/)
    assert.equal(new ProducerIdAllocator(dir, 10).allocate(), 10)
  } finally {
    removeDir(dir)
  }
})
