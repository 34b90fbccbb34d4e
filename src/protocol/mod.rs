//! The wire protocol, pure: no sockets, no database.

pub mod codec;
pub mod command;
pub mod definition;
pub mod help;
pub mod reply;
pub mod table;
pub mod token;

pub use codec::{Frame, LineCodec, Progress};
pub use command::{Command, parse_command};
pub use reply::{FileBody, Line, LineOut, Reply};
