//! Live tasks by id, split into shards so callers submitting at once and execution threads
//! ending tasks at once rarely meet on one lock (one global map was the most contended lock
//! of the runtime under load).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use parking_lot::Mutex;

use super::record::Record;
use super::task::TaskId;

/// A power of two; more than the default 4 + 8 pool threads and about as many callers.
const SHARDS: usize = 16;

/// Live tasks by id. A record enters at admission and leaves when its task has ended and its
/// job holds no execution thread, before the caller is woken. Lock order: a record's lock,
/// then a shard's; never two shards at once. (`insert` locks the new record under its shard's
/// lock: nobody else can reach that record yet, so no thread waits the other way round.)
pub(super) struct Registry {
    shards: [Mutex<Shard>; SHARDS],
}

#[derive(Default)]
struct Shard {
    tasks: HashMap<TaskId, Arc<Record>>,
    /// Set by [`Registry::close`]; no task enters this shard after.
    closed: bool,
}

/// Which shard holds `id` (FNV-1a over its bytes: ids are at most 41 bytes, and their
/// random suffix spreads them evenly). The same function serves ids a host passes in.
fn shard_of(id: &str) -> usize {
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    // The high bits mix every byte; the low bits of an FNV product mix fewer.
    (hash >> 32) as usize % SHARDS
}

impl Registry {
    pub(super) fn new() -> Registry {
        Registry {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
        }
    }

    /// Adds the record `make` builds under the first id of `ids` not in use, unless the
    /// registry is closed (then returns `None` without calling `make`). `make` runs under the
    /// shard's lock, so whatever it does (posting `Queued`) happens before anybody can find
    /// the record.
    pub(super) fn insert(
        &self,
        mut ids: impl FnMut(u32) -> TaskId,
        make: impl FnOnce(TaskId) -> Arc<Record>,
    ) -> Option<Arc<Record>> {
        let mut attempt = 0;
        loop {
            let id = ids(attempt);
            let mut shard = self.shards[shard_of(id.as_str())].lock();
            if shard.closed {
                return None;
            }
            if let Entry::Vacant(slot) = shard.tasks.entry(id) {
                let record = make(slot.key().clone());
                slot.insert(record.clone());
                return Some(record);
            }
            attempt += 1;
        }
    }

    pub(super) fn get(&self, id: &str) -> Option<Arc<Record>> {
        self.shards[shard_of(id)].lock().tasks.get(id).cloned()
    }

    /// Removes an ended task; whether it was there.
    pub(super) fn remove(&self, id: &TaskId) -> bool {
        self.shards[shard_of(id.as_str())]
            .lock()
            .tasks
            .remove(id)
            .is_some()
    }

    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().tasks.len())
            .sum()
    }

    /// Every live task, shard by shard.
    pub(super) fn records(&self) -> Vec<Arc<Record>> {
        let mut records = Vec::new();
        for shard in &self.shards {
            records.extend(shard.lock().tasks.values().cloned());
        }
        records
    }

    /// Closes every shard (no task enters after this returns) and returns the live tasks.
    pub(super) fn close(&self) -> Vec<Arc<Record>> {
        let mut records = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock();
            shard.closed = true;
            records.extend(shard.tasks.values().cloned());
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_spread_over_every_shard() {
        let mut seen = [0usize; SHARDS];
        for seq in 0..4_096 {
            seen[shard_of(TaskId::generate("task", seq, 0).as_str())] += 1;
        }
        // 256 expected per shard; a shard below 128 would mean a skewed spread.
        assert!(seen.iter().all(|&n| n > 128), "{seen:?}");
    }
}
