// Switching from async-mutex: this is an async-mutex program with one import line changed. Run it, then read the
// profile it writes (to the file named, default async-mutex.pb.gz here) with go tool pprof (the command is printed):
//
//   npx tsx examples/async-mutex.ts [file]
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Mutex, Semaphore } from 'mutexprof/async-mutex'; // was: from 'async-mutex'
import { lookup, setMutexProfileFraction, setBlockProfileRate } from 'mutexprof';

setMutexProfileFraction(1);
setBlockProfileRate(1);

const cache = new Mutex({ name: 'cache' }); // the last constructor argument names the lock in the profiles
const pool = new Semaphore(2, { name: 'db-pool' });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function refresh(): Promise<void> {
  await cache.runExclusive(async () => {
    await sleep(5); // slow refill, holding the lock
  });
}

async function query(): Promise<void> {
  const [, release] = await pool.acquire();
  try {
    await sleep(2);
  } finally {
    release();
  }
}

await Promise.all([...Array.from({ length: 8 }, refresh), ...Array.from({ length: 8 }, query)]);
const file = resolve(process.argv[2] ?? 'async-mutex.pb.gz');
await writeFile(file, await lookup('mutex').encode());
console.log(`go tool pprof -top ${file}`);
