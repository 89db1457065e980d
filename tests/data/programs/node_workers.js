// A node.js job for test_migrate: the main thread and a worker thread
// (worker_threads) each hash a chain of blocks, taking turns by messages,
// with timers in between and 32 MiB of buffers, for ~3 s. The output
// depends only on ROUNDS, so a run moved mid-way prints the same lines.
//   node node_workers.js ROUNDS
const { Worker, isMainThread, parentPort } = require('worker_threads');
const crypto = require('crypto');

function step(prev, i, block) {
  return crypto.createHash('sha256').update(prev).update(String(i)).update(block).digest('hex');
}

if (isMainThread) {
  const rounds = +process.argv[2] || 300;
  const block = Buffer.alloc(1 << 20, 7);
  const ballast = Buffer.alloc(32 << 20, 3);  // memory that moves along
  const worker = new Worker(__filename);
  let h = 'start', i = 0;
  worker.on('message', (w) => {
    h = step(h + w, i, block);
    console.log(i, h.slice(0, 16), ballast[i % ballast.length]);
    if (++i >= rounds) { worker.terminate(); return; }
    setTimeout(() => worker.postMessage([h, i]), 8);
  });
  worker.postMessage([h, i]);
} else {
  const block = Buffer.alloc(1 << 20, 9);
  parentPort.on('message', ([h, i]) => parentPort.postMessage(step(h, i, block)));
}
