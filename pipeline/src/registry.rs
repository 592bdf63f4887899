//! The registry: sorted name → factory maps per kind, built once from the compile-time
//! registrations. A type registered twice is an error naming both factories; an unknown type
//! lists the registered ones, and a type compiled out of this build names the cargo feature
//! that brings it in.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::data::Signal;
use crate::factory::{
    ExporterFactory, ExporterRegistration, KnownComponent, ProcessorFactory, ProcessorRegistration,
    ReceiverFactory, ReceiverRegistration, Stability,
};
use crate::id::Kind;

/// One row of `sluice components`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    pub kind: Kind,
    pub type_name: &'static str,
    pub signals: &'static [Signal],
    pub stability: Stability,
    pub example: &'static str,
}

/// All factories this build contains.
pub struct Registry {
    receivers: BTreeMap<&'static str, &'static dyn ReceiverFactory>,
    processors: BTreeMap<&'static str, &'static dyn ProcessorFactory>,
    exporters: BTreeMap<&'static str, &'static dyn ExporterFactory>,
    duplicates: Vec<String>,
}

fn insert<F: ?Sized>(
    map: &mut BTreeMap<&'static str, &'static F>,
    duplicates: &mut Vec<String>,
    kind: Kind,
    type_name: &'static str,
    factory: &'static F,
    name_of: impl Fn(&'static F) -> &'static str,
) {
    if let Some(prev) = map.insert(type_name, factory) {
        duplicates.push(format!(
            "{kind} type `{type_name}` is registered twice: by {} and by {}",
            name_of(prev),
            name_of(factory)
        ));
    }
}

impl Registry {
    /// Builds a registry from the linked-in registrations.
    fn collect() -> Registry {
        let mut duplicates = Vec::new();
        let mut receivers = BTreeMap::new();
        for r in inventory::iter::<ReceiverRegistration> {
            insert(
                &mut receivers,
                &mut duplicates,
                Kind::Receiver,
                r.0.type_name(),
                r.0,
                |f| f.factory_name(),
            );
        }
        let mut processors = BTreeMap::new();
        for r in inventory::iter::<ProcessorRegistration> {
            insert(
                &mut processors,
                &mut duplicates,
                Kind::Processor,
                r.0.type_name(),
                r.0,
                |f| f.factory_name(),
            );
        }
        let mut exporters = BTreeMap::new();
        for r in inventory::iter::<ExporterRegistration> {
            insert(
                &mut exporters,
                &mut duplicates,
                Kind::Exporter,
                r.0.type_name(),
                r.0,
                |f| f.factory_name(),
            );
        }
        Registry {
            receivers,
            processors,
            exporters,
            duplicates,
        }
    }

    /// The process-wide registry. `Err` lists every type registered twice.
    pub fn global() -> Result<&'static Registry, Vec<String>> {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        let r = REGISTRY.get_or_init(Registry::collect);
        if r.duplicates.is_empty() {
            Ok(r)
        } else {
            Err(r.duplicates.clone())
        }
    }

    /// The receiver factory of `type_name`, or a message saying what exists.
    pub fn receiver(&self, type_name: &str) -> Result<&'static dyn ReceiverFactory, String> {
        self.receivers
            .get(type_name)
            .copied()
            .ok_or_else(|| self.unknown(Kind::Receiver, type_name))
    }

    /// The processor factory of `type_name`, or a message saying what exists.
    pub fn processor(&self, type_name: &str) -> Result<&'static dyn ProcessorFactory, String> {
        self.processors
            .get(type_name)
            .copied()
            .ok_or_else(|| self.unknown(Kind::Processor, type_name))
    }

    /// The exporter factory of `type_name`, or a message saying what exists.
    pub fn exporter(&self, type_name: &str) -> Result<&'static dyn ExporterFactory, String> {
        self.exporters
            .get(type_name)
            .copied()
            .ok_or_else(|| self.unknown(Kind::Exporter, type_name))
    }

    fn type_names(&self, kind: Kind) -> Vec<&'static str> {
        match kind {
            Kind::Receiver => self.receivers.keys().copied().collect(),
            Kind::Processor => self.processors.keys().copied().collect(),
            Kind::Exporter => self.exporters.keys().copied().collect(),
        }
    }

    fn unknown(&self, kind: Kind, type_name: &str) -> String {
        if let Some(k) = inventory::iter::<KnownComponent>
            .into_iter()
            .find(|k| k.kind == kind && k.type_name == type_name)
        {
            return format!(
                "{kind} type `{type_name}` is not in this build of sluice: rebuild with `cargo build --features {}`",
                k.feature
            );
        }
        let names = self.type_names(kind);
        let list = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        format!("unknown {kind} type `{type_name}`; this build has: {list}")
    }

    /// Every component of this build, sorted by kind then type.
    pub fn components(&self) -> Vec<ComponentInfo> {
        let mut out = Vec::new();
        for f in self.receivers.values() {
            out.push(ComponentInfo {
                kind: Kind::Receiver,
                type_name: f.type_name(),
                signals: f.signals(),
                stability: f.stability(),
                example: f.example(),
            });
        }
        for f in self.processors.values() {
            out.push(ComponentInfo {
                kind: Kind::Processor,
                type_name: f.type_name(),
                signals: f.signals(),
                stability: f.stability(),
                example: f.example(),
            });
        }
        for f in self.exporters.values() {
            out.push(ComponentInfo {
                kind: Kind::Exporter,
                type_name: f.type_name(),
                signals: f.signals(),
                stability: f.stability(),
                example: f.example(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_registered_twice_names_both_factories() {
        let mut map: BTreeMap<&'static str, &'static str> = BTreeMap::new();
        let mut dups = Vec::new();
        insert(&mut map, &mut dups, Kind::Receiver, "otlp", "first", |f| f);
        insert(&mut map, &mut dups, Kind::Receiver, "otlp", "second", |f| f);
        assert_eq!(
            dups,
            vec!["receiver type `otlp` is registered twice: by first and by second".to_string()]
        );
    }
}
