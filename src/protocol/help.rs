//! The command table behind `HELP` and the signatures named by `ERROR 402`: every command
//! with its arguments (integers bare, strings in quotes, as in protocol-spec/), who may use
//! it and one sentence. `tests/newcomer.rs` checks that every parsed command has a row.

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

macro_rules! table {
    ($($name:literal, $sig:literal, $who:ident, $feature:expr, $sentence:literal;)*) => {
        /// Every command, in the order of protocol-spec/.
        pub const COMMANDS: &[Entry] = &[$(Entry {
            name: $name,
            signature: $sig,
            who: Who::$who,
            feature: $feature,
            sentence: $sentence,
        },)*];
    };
}

const N: Option<&str> = Some("notify");
const S: Option<&str> = Some("subscribe");

table! {
    "HELLO", "HELLO", Anyone, None, "The server's name and unique id.";
    "LOGIN", "LOGIN 'login' 'password'", Anyone, None, "Logs this connection in; answers USER with your user id and access level.";
    "QUIT", "QUIT", Anyone, None, "Answers OK and closes the connection.";
    "HELP", "HELP ['COMMAND NAME']", Anyone, None, "Lists the commands you may use, or explains one.";
    "LIST FEATURES", "LIST FEATURES", User, None, "The optional features this server offers.";
    "LIST USERS", "LIST USERS", User, None, "Every user (U lines) and the memberships you may see (M lines).";
    "ADD USER", "ADD USER 'login' 'name' 'password'", ServerAdmin, None, "Creates a user with access 1.";
    "SET PASSWORD", "SET PASSWORD userId 'password'", User, None, "Sets your own password (administrators: anyone's).";
    "RENAME USER", "RENAME USER userId 'name'", ServerAdmin, None, "Changes a user's display name.";
    "GRANT USER", "GRANT USER userId access", ServerAdmin, None, "Sets a user's access: 0 disabled, 1 normal, 2 server administrator.";
    "GRANT MEMBER", "GRANT MEMBER userId projectId access", ProjectAdmin, None, "Sets a membership: 0 removes it, 1 member, 2 project administrator.";
    "LIST TYPES", "LIST TYPES", User, None, "Every issue type (T lines) and its attributes (A lines).";
    "ADD TYPE", "ADD TYPE 'name'", ServerAdmin, None, "Creates an issue type.";
    "RENAME TYPE", "RENAME TYPE typeId 'name'", ServerAdmin, None, "Renames an issue type.";
    "DELETE TYPE", "DELETE TYPE typeId", ServerAdmin, None, "Deletes an issue type no folder uses, with its attributes.";
    "ADD ATTRIBUTE", "ADD ATTRIBUTE typeId 'name' 'definition'", ServerAdmin, None, "Adds an attribute to a type, e.g. 'ENUM items={\"Low\",\"High\"} default=\"Low\"' (protocol-spec/attributes.md).";
    "RENAME ATTRIBUTE", "RENAME ATTRIBUTE attributeId 'name'", ServerAdmin, None, "Renames an attribute.";
    "MODIFY ATTRIBUTE", "MODIFY ATTRIBUTE attributeId 'definition'", ServerAdmin, None, "Replaces an attribute's definition.";
    "DELETE ATTRIBUTE", "DELETE ATTRIBUTE attributeId", ServerAdmin, None, "Deletes an attribute and every value and history row of it.";
    "LIST PROJECTS", "LIST PROJECTS", User, None, "The projects (P lines) and folders (F lines) you may see.";
    "ADD PROJECT", "ADD PROJECT 'name'", ServerAdmin, None, "Creates a project.";
    "RENAME PROJECT", "RENAME PROJECT projectId 'name'", ServerAdmin, None, "Renames a project.";
    "DELETE PROJECT", "DELETE PROJECT projectId", ServerAdmin, None, "Deletes a project that has no folders.";
    "ADD FOLDER", "ADD FOLDER projectId typeId 'name'", ProjectAdmin, None, "Creates a folder holding issues of one type.";
    "RENAME FOLDER", "RENAME FOLDER folderId 'name'", ProjectAdmin, None, "Renames a folder.";
    "DELETE FOLDER", "DELETE FOLDER folderId", ProjectAdmin, None, "Deletes a folder that has no issues.";
    "LIST ISSUES", "LIST ISSUES folderId sinceStamp", User, None, "The folder's issues changed after sinceStamp (0: all), with their values.";
    "GET DETAILS", "GET DETAILS issueId sinceStamp", User, None, "An issue with its values, comments, attachments and history after sinceStamp.";
    "ADD ISSUE", "ADD ISSUE folderId 'name'", User, None, "Creates an issue in a folder of a project you belong to.";
    "RENAME ISSUE", "RENAME ISSUE issueId 'name'", User, None, "Renames an issue.";
    "SET VALUE", "SET VALUE issueId attributeId 'value'", User, None, "Sets one attribute value of an issue ('' clears it).";
    "ADD COMMENT", "ADD COMMENT issueId 'text'", User, None, "Adds a comment to an issue (\\n for a new line).";
    "ADD ATTACHMENT", "ADD ATTACHMENT issueId 'name' 'description' {size}", User, None, "Attaches a file: size raw bytes follow the line.";
    "GET ATTACHMENT", "GET ATTACHMENT attachmentId", User, None, "An attachment's bytes (DATA size, then the bytes).";
    "FIND ITEM", "FIND ITEM itemId", User, None, "The issue a comment, attachment or change id belongs to.";
    "LIST PREFERENCES", "LIST PREFERENCES userId", User, None, "Your preferences (administrators: anyone's).";
    "SET PREFERENCE", "SET PREFERENCE userId 'name' 'value'", User, None, "Sets a preference, e.g. 'email', 'notify-frequency' ('' deletes it).";
    "CONFIRM EMAIL", "CONFIRM EMAIL userId 'token'", User, N, "Confirms your email address with the token from its confirmation mail.";
    "LIST NOTIFICATIONS", "LIST NOTIFICATIONS", User, N, "The folders and issues you watch.";
    "NOTIFY FOLDER", "NOTIFY FOLDER folderId status", User, N, "Watches a folder (1) or stops (0): its changes are mailed to you.";
    "NOTIFY ISSUE", "NOTIFY ISSUE issueId status", User, N, "Watches an issue (1) or stops (0).";
    "PREVIEW NOTIFICATIONS", "PREVIEW NOTIFICATIONS userId", ServerAdmin, N, "What a user's next digest would hold, and when it is due.";
    "RUN NOTIFICATIONS", "RUN NOTIFICATIONS", ServerAdmin, N, "Runs a digest pass now.";
    "LIST OUTBOX", "LIST OUTBOX", ServerAdmin, N, "The mail queue and the state of the mail transport.";
    "RETRY OUTBOX", "RETRY OUTBOX messageId", ServerAdmin, N, "Sends a queued message again now.";
    "DELETE OUTBOX", "DELETE OUTBOX messageId", ServerAdmin, N, "Drops a queued message.";
    "SUBSCRIBE FOLDER", "SUBSCRIBE FOLDER folderId 'mailto:address' ttl 'options'", User, S, "Subscribes an outside address to a folder's changes, after it confirms (ttl 0: no expiry).";
    "SUBSCRIBE ISSUE", "SUBSCRIBE ISSUE issueId 'mailto:address' ttl 'options'", User, S, "Subscribes an outside address to an issue's changes, after it confirms.";
    "LIST SUBSCRIPTIONS", "LIST SUBSCRIPTIONS", User, S, "The subscriptions you made (administrators: all).";
    "DELETE SUBSCRIPTION", "DELETE SUBSCRIPTION subscriptionId", User, S, "Cancels a subscription.";
    "CONFIRM SUBSCRIPTION", "CONFIRM SUBSCRIPTION subscriptionId 'token'", User, S, "Confirms a subscription with the token from its mail.";
}

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
