// One full garbage collection on demand, for daemons whose start-up (probing, proto loading)
// leaves tens of MB of garbage that V8 would otherwise keep resident until its next major GC.
import v8 from 'node:v8';
import vm from 'node:vm';

let collect: (() => void) | undefined;

/** Runs a full GC now; a no-op where the engine refuses. */
export function compactHeap(): void {
  try {
    if (!collect) {
      v8.setFlagsFromString('--expose-gc');
      collect = vm.runInNewContext('gc') as () => void;
    }
    collect();
  } catch {
    // Not fatal: memory is then returned at V8's own pace.
  }
}
