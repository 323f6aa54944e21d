import CRocksDB
import Glibc

/// One batch waiting for the committer.
struct PendingCommit {
    let batch: StoreBatch
    let completion: @Sendable (StorageError?) -> Void
}

// Group commit: any thread appends to `queue` under `lock` and wakes the committer only when
// the queue was empty (the committer waits only then). The committer swaps the whole queue out
// under the lock, and with the lock released writes all of it as one WriteBatch: one WAL
// append and, under `.sync`, one fsync for every batch submitted while the previous write ran.
// Completions run afterwards on the committer thread, in submission order.
extension StoreEngine {
    func commit(_ batch: StoreBatch, completion: @escaping @Sendable (StorageError?) -> Void) {
        lock.lock()
        if isStopping {
            lock.unlock()
            completion(.closed())
            return
        }
        let wasEmpty = queue.isEmpty
        if wasEmpty && options.commitIntervalMs > 0 { firstPendingAtNanos = monotonicNanos() }
        queue.append(PendingCommit(batch: batch, completion: completion))
        pendingBatches.add(1, ordering: .relaxed)
        lock.unlock()
        if wasEmpty { lock.signal() }
    }

    /// The committer thread's loop; returns once stopping and the queue is drained.
    func runCommitter() {
        let wb = rocksdb_writebatch_create()!
        defer { rocksdb_writebatch_destroy(wb) }
        let windowNanos = UInt64(max(0, options.commitIntervalMs)) * 1_000_000
        var group: [PendingCommit] = []
        lock.lock()
        while true {
            while queue.isEmpty && !isStopping { lock.wait() }
            if queue.isEmpty { break }  // stopping, and nothing left
            if windowNanos > 0 {
                let deadline = firstPendingAtNanos + windowNanos
                while !isStopping && monotonicNanos() < deadline { lock.wait(untilMonotonicNanos: deadline) }
            }
            swap(&queue, &group)
            lock.unlock()

            rocksdb_writebatch_clear(wb)
            var records = 0
            for p in group {
                append(p.batch, to: wb)
                records += p.batch.count
            }
            var failure: StorageError? = nil
            do { try write(wb, records: records) } catch { failure = error }
            // Before the completions, so a completion sees its own batch no longer pending.
            pendingBatches.subtract(group.count, ordering: .relaxed)
            for p in group { p.completion(failure) }
            // Keep the array's storage for the next group unless a burst made it huge.
            group.removeAll(keepingCapacity: group.count <= 4096)

            lock.lock()
        }
        lock.unlock()
    }

    /// The `.periodic` flusher: every interval, fsyncs the WAL if anything was written since the
    /// last time. Returns when stopping; `close()` does the last sync after the committer drained.
    func runFlusher(intervalMs: Int) {
        let interval = UInt64(intervalMs) * 1_000_000
        var syncedCommits = 0
        flusherLock.lock()
        while !flusherStopping {
            let deadline = monotonicNanos() + interval
            while !flusherStopping && monotonicNanos() < deadline { flusherLock.wait(untilMonotonicNanos: deadline) }
            if flusherStopping { break }
            flusherLock.unlock()
            let commits = commitsTotal.load(ordering: .relaxed)
            if commits != syncedCommits {
                if (try? rocksDBCall({ rocksdb_flush_wal(handle.db, 1, $0) })) != nil {
                    syncsTotal.add(1, ordering: .relaxed)
                    syncedCommits = commits
                }
            }
            flusherLock.lock()
        }
        flusherLock.unlock()
    }
}
