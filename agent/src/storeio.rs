//! Reading documents from the store: size-limited, so that a document from the store can never
//! make the agent allocate more than the document type allows.

use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as Key;
use pcap_uploader::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("the object is larger than {0} bytes")]
    TooLarge(u64),
    #[error("{0}")]
    Store(String),
}

/// The object at `key` if it exists, refusing objects over `max` bytes without reading them.
pub async fn get_limited(
    store: &Store,
    key: &Key,
    max: usize,
) -> Result<Option<Vec<u8>>, GetError> {
    let result = match store.objects().get(key).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(GetError::Store(e.to_string())),
    };
    if result.meta.size > max as u64 {
        return Err(GetError::TooLarge(result.meta.size));
    }
    let mut out = Vec::with_capacity(result.meta.size as usize);
    let mut stream = result.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| GetError::Store(e.to_string()))?;
        if out.len() + chunk.len() > max {
            return Err(GetError::TooLarge((out.len() + chunk.len()) as u64));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

/// Writes `bytes` at `key` (one request; small documents only).
pub async fn put(store: &Store, key: &Key, bytes: Vec<u8>) -> Result<(), String> {
    store
        .objects()
        .put(key, object_store::PutPayload::from(bytes))
        .await
        .map(drop)
        .map_err(|e| format!("cannot write {key}: {e}"))
}
