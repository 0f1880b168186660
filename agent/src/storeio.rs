//! Writing small documents (results, heartbeats) to the store.

use object_store::ObjectStoreExt;
use object_store::path::Path as Key;
use pcap_uploader::store::Store;

/// Writes `bytes` at `key` (one request; small documents only).
pub async fn put(store: &Store, key: &Key, bytes: Vec<u8>) -> Result<(), String> {
    store
        .objects()
        .put(key, object_store::PutPayload::from(bytes))
        .await
        .map(drop)
        .map_err(|e| format!("cannot write {key}: {e}"))
}
