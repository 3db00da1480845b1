// The floor: the least a FIFO async lock with direct hand-off can do. No abort, no guard, no checks.
export class FloorLock {
  #locked = false;
  #q = [];
  #h = 0;
  lock() {
    if (!this.#locked) return ((this.#locked = true), Promise.resolve());
    return new Promise((r) => this.#q.push(r));
  }
  tryLock() {
    return this.#locked ? false : (this.#locked = true);
  }
  unlock() {
    if (this.#h === this.#q.length) return void (this.#locked = false);
    const r = this.#q[this.#h++];
    if (this.#h === this.#q.length) this.#q.length = this.#h = 0;
    else if (this.#h >= 1024 && this.#h * 2 >= this.#q.length) {
      this.#q.splice(0, this.#h);
      this.#h = 0;
    }
    r();
  }
}

// The same idea for readers/writers (one FIFO queue, readers batch up to the next writer).
export class FloorRWLock {
  #w = false;
  #r = 0;
  #q = [];
  lock() {
    if (!this.#w && this.#r === 0 && this.#q.length === 0) return ((this.#w = true), Promise.resolve());
    return new Promise((res) => this.#q.push({ res, w: true }));
  }
  rLock() {
    if (!this.#w && this.#q.length === 0) return (this.#r++, Promise.resolve());
    return new Promise((res) => this.#q.push({ res, w: false }));
  }
  unlock() {
    this.#w = false;
    this.#admit();
  }
  rUnlock() {
    if (--this.#r === 0) this.#admit();
  }
  #admit() {
    const q = this.#q;
    if (q.length === 0) return;
    if (q[0].w) {
      if (this.#r === 0) {
        this.#w = true;
        q.shift().res();
      }
      return;
    }
    while (q.length > 0 && !q[0].w) {
      this.#r++;
      q.shift().res();
    }
  }
}

// The floor again, resolving each acquisition with a fresh guard object, as lock() must: not a target, a reference
// that shows what the guard itself costs (V8 looks up `then` on any object a promise resolves with).
// Written out again rather than derived from FloorLock: shared methods would share V8's type feedback with the floor.
function disposeFloorGuard() {
  this.lock.unlock();
}
export class FloorGuardLock {
  #locked = false;
  #q = [];
  #h = 0;
  lock() {
    if (!this.#locked) return ((this.#locked = true), Promise.resolve({ lock: this, [Symbol.dispose]: disposeFloorGuard }));
    return new Promise((r) => this.#q.push(r));
  }
  unlock() {
    if (this.#h === this.#q.length) return void (this.#locked = false);
    const r = this.#q[this.#h++];
    if (this.#h === this.#q.length) this.#q.length = this.#h = 0;
    else if (this.#h >= 1024 && this.#h * 2 >= this.#q.length) {
      this.#q.splice(0, this.#h);
      this.#h = 0;
    }
    r({ lock: this, [Symbol.dispose]: disposeFloorGuard });
  }
}
