//! The default values of each issue type's attributes, read and parsed once and shared by
//! all connections: ADD ISSUE stores them, and reading every attribute of the type and
//! parsing its definition was a quarter of an ADD ISSUE's instructions.
//!
//! An entry holds for one attribute generation of the store: adding, changing or deleting
//! an attribute writes its `attr/` record, which moves the generation.

use crate::attributes::DefinitionCache;
use crate::error::Result;
use crate::store::{Read, types};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Types kept at most; a full cache starts over.
const TYPES_KEPT: usize = 4096;

/// (attribute, default value) of the attributes with a non-empty default, in id order.
pub type Defaults = Arc<[(u64, String)]>;

#[derive(Default)]
pub struct TypeDefaults(Mutex<HashMap<u64, (u64, Defaults)>>);

impl TypeDefaults {
    /// The defaults of `type_id` as `r` holds them; `generation` is the store's attribute
    /// generation read under the same lock as `r`.
    pub fn get(
        &self,
        r: &impl Read,
        definitions: &DefinitionCache,
        type_id: u64,
        generation: u64,
    ) -> Result<Defaults> {
        let lock = || self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, d)) = lock().get(&type_id)
            && *g == generation
        {
            return Ok(d.clone());
        }
        let mut defaults = Vec::new();
        for a in types::attributes_of(r, type_id)? {
            if let Ok(def) = definitions.parse(&a.definition)
                && !def.default.is_empty()
            {
                defaults.push((a.id, def.default.clone()));
            }
        }
        let defaults: Defaults = defaults.into();
        let mut map = lock();
        if map.len() >= TYPES_KEPT {
            map.clear();
        }
        map.insert(type_id, (generation, defaults.clone()));
        Ok(defaults)
    }
}
