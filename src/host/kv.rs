//! [`Kv`] over Envoy shared data: process-wide, shared by every worker VM with the same vm_id.
//!
//! Shared data cannot be deleted through the ABI, which is why everything stateful lives in
//! bounded slot tables (`crate::store`) whose keys are reused, never accumulated.

use super::abi;
use crate::store::{Cas, Kv, KvError};

#[derive(Default)]
pub struct SharedDataKv;

impl Kv for SharedDataKv {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Cas)>, KvError> {
        abi::shared_get(key).map_err(|e| KvError::Host(e.status))
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<Cas>) -> Result<(), KvError> {
        match abi::shared_set(key, value, cas.unwrap_or(0)) {
            Ok(()) => Ok(()),
            Err(e) if e.status == abi::CAS_MISMATCH => Err(KvError::CasMismatch),
            Err(e) => Err(KvError::Host(e.status)),
        }
    }
}
