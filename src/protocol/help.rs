//! What `HELP` and the signatures named by `ERROR 402` read of the command table
//! ([`super::table`]): every command with its arguments (integers bare, strings in quotes,
//! as in protocol-spec/), who may use it and one sentence.

/// Who may run a command (protocol-spec/permissions.md has the full matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Who {
    /// No login needed.
    Anyone,
    /// Any logged-in user.
    User,
    /// A project administrator (or a server administrator).
    ProjectAdmin,
    /// A server administrator.
    ServerAdmin,
}

/// One command: its name, its signature, who may run it, the feature it needs, what it does.
pub struct Entry {
    pub name: &'static str,
    pub signature: &'static str,
    pub who: Who,
    pub feature: Option<&'static str>,
    pub sentence: &'static str,
}

pub use super::command::COMMANDS;

/// The entry of a command, by its keywords as typed (case-insensitive, spaces collapsed).
pub fn find(name: &str) -> Option<&'static Entry> {
    let wanted: Vec<String> = name.split_whitespace().map(str::to_uppercase).collect();
    let wanted = wanted.join(" ");
    COMMANDS.iter().find(|e| e.name == wanted)
}

/// The signature of the command with these keywords, for 402 messages.
pub fn signature(keywords: &[&str]) -> Option<&'static str> {
    let name = keywords.join(" ");
    COMMANDS
        .iter()
        .find(|e| e.name == name)
        .map(|e| e.signature)
}
