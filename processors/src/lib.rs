//! sluice's processors. Each is a folder behind a cargo feature of this crate, registered with
//! the pipeline core at compile time; `known_component!` lines let a build without a processor
//! say which feature of the `sluice` binary enables it.

#[cfg(feature = "batch")]
pub mod batch;
#[cfg(feature = "pii")]
pub mod pii;
#[cfg(feature = "sli")]
pub mod sli;

sluice_pipeline::known_component!(Processor, "batch", "processor-batch");
sluice_pipeline::known_component!(Processor, "pii", "processor-pii");
sluice_pipeline::known_component!(Processor, "sli", "processor-sli");
