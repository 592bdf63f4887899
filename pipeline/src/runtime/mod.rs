//! The runtime: builds the graph of a resolved config ([`graph`]), moves data through it
//! ([`fanout`], [`processing`]), wraps exporters in queues with retries ([`exporter_driver`]) and
//! stops it in order ([`shutdown`]).

pub mod exporter_driver;
pub mod fanout;
pub mod graph;
pub(crate) mod processing;
pub mod shutdown;

pub use graph::{RunningService, StartupError};
