//! sluice's receivers. Each is a folder behind a cargo feature of this crate, registered with the
//! pipeline core at compile time; `known_component!` lines let a build without a receiver say
//! which feature of the `sluice` binary enables it.

#[cfg(feature = "filelog")]
pub mod filelog;
#[cfg(feature = "github")]
pub mod github;
#[cfg(feature = "otlp")]
pub mod otlp;
#[cfg(feature = "procfs")]
pub mod procfs;

sluice_pipeline::known_component!(Receiver, "procfs", "receiver-procfs");
sluice_pipeline::known_component!(Receiver, "otlp", "receiver-otlp");
sluice_pipeline::known_component!(Receiver, "github", "receiver-github");
sluice_pipeline::known_component!(Receiver, "filelog", "receiver-filelog");
