//! Open connections per client address, for both listeners' caps.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections per client address, so one address cannot take every connection slot.
#[derive(Clone)]
pub struct PerIp {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Holds one of an address's connection slots; gives it back on drop.
pub struct PerIpSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerIp {
    /// `max` 0 means no per-address limit.
    pub fn new(max: usize) -> Self {
        PerIp {
            max: if max == 0 { usize::MAX } else { max },
            open: Arc::default(),
        }
    }

    pub fn acquire(&self, ip: IpAddr) -> Option<PerIpSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(PerIpSlot {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
