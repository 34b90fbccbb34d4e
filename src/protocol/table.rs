//! The 0.8 command set, declared once. Each row gives a command's variant, keywords,
//! arguments with their string kinds, handler, who may call it, the feature it needs, and
//! its HELP signature and sentence. Everything else is generated from these rows: the
//! [`Command`](super::Command) enum and its parser and the HELP table (`command.rs`), and
//! the dispatch to the handlers (`commands::dispatch`). The handler paths are only tokens
//! here; they are resolved in `commands/`, so this module still imports nothing of the
//! server.
//!
//! A row: `Variant [KEYWORDS] (field: Kind, ...) sync|async module::handler; Who feature
//! "signature" "sentence";`. Kinds: `Int` (an integer that fits i32), the string kinds of
//! [`Kind`](super::command::Kind), `OptKey` (an optional last string) and `Data` (the
//! literal). A handler is called as `handler(cx, field, ...)`, fields in row order.

/// Calls `$then! { rows }` with every row of the table, in the order of protocol-spec/
/// (the order HELP lists them in).
#[macro_export]
#[doc(hidden)]
macro_rules! command_table {
    ($then:ident) => {
        $then! {
            Hello ["HELLO"] () sync system::hello;
                Anyone none "HELLO" "The server's name and unique id.";
            Login ["LOGIN"] (login: Name, password: Password) async system::login;
                Anyone none "LOGIN 'login' 'password'" "Logs this connection in; answers USER with your user id and access level.";
            Quit ["QUIT"] () sync system::quit;
                Anyone none "QUIT" "Answers OK and closes the connection.";
            Help ["HELP"] (name: OptKey) sync help::help;
                Anyone none "HELP ['COMMAND NAME']" "Lists the commands you may use, or explains one.";
            ListFeatures ["LIST" "FEATURES"] () sync system::list_features;
                User none "LIST FEATURES" "The optional features this server offers.";
            ListUsers ["LIST" "USERS"] () sync users::list_users;
                User none "LIST USERS" "Every user (U lines) and the memberships you may see (M lines).";
            AddUser ["ADD" "USER"] (login: Name, name: Name, password: Password) async users::add_user;
                ServerAdmin none "ADD USER 'login' 'name' 'password'" "Creates a user with access 1.";
            SetPassword ["SET" "PASSWORD"] (user: Int, password: Password) async users::set_password;
                User none "SET PASSWORD userId 'password'" "Sets your own password (administrators: anyone's).";
            RenameUser ["RENAME" "USER"] (user: Int, name: Name) sync users::rename_user;
                ServerAdmin none "RENAME USER userId 'name'" "Changes a user's display name.";
            GrantUser ["GRANT" "USER"] (user: Int, access: Int) sync users::grant_user;
                ServerAdmin none "GRANT USER userId access" "Sets a user's access: 0 disabled, 1 normal, 2 server administrator.";
            GrantMember ["GRANT" "MEMBER"] (user: Int, project: Int, access: Int) sync projects::grant_member;
                ProjectAdmin none "GRANT MEMBER userId projectId access" "Sets a membership: 0 removes it, 1 member, 2 project administrator.";
            ListTypes ["LIST" "TYPES"] () sync types::list_types;
                User none "LIST TYPES" "Every issue type (T lines) and its attributes (A lines).";
            AddType ["ADD" "TYPE"] (name: Name) sync types::add_type;
                ServerAdmin none "ADD TYPE 'name'" "Creates an issue type.";
            RenameType ["RENAME" "TYPE"] (type_id: Int, name: Name) sync types::rename_type;
                ServerAdmin none "RENAME TYPE typeId 'name'" "Renames an issue type.";
            DeleteType ["DELETE" "TYPE"] (type_id: Int) sync types::delete_type;
                ServerAdmin none "DELETE TYPE typeId" "Deletes an issue type no folder uses, with its attributes.";
            AddAttribute ["ADD" "ATTRIBUTE"] (type_id: Int, name: Name, definition: Definition) sync types::add_attribute;
                ServerAdmin none "ADD ATTRIBUTE typeId 'name' 'definition'" "Adds an attribute to a type, e.g. 'ENUM items={\"Low\",\"High\"} default=\"Low\"' (protocol-spec/attributes.md).";
            RenameAttribute ["RENAME" "ATTRIBUTE"] (attribute: Int, name: Name) sync types::rename_attribute;
                ServerAdmin none "RENAME ATTRIBUTE attributeId 'name'" "Renames an attribute.";
            ModifyAttribute ["MODIFY" "ATTRIBUTE"] (attribute: Int, definition: Definition) sync types::modify_attribute;
                ServerAdmin none "MODIFY ATTRIBUTE attributeId 'definition'" "Replaces an attribute's definition.";
            DeleteAttribute ["DELETE" "ATTRIBUTE"] (attribute: Int) sync types::delete_attribute;
                ServerAdmin none "DELETE ATTRIBUTE attributeId" "Deletes an attribute and every value and history row of it.";
            ListProjects ["LIST" "PROJECTS"] () sync projects::list_projects;
                User none "LIST PROJECTS" "The projects (P lines) and folders (F lines) you may see.";
            AddProject ["ADD" "PROJECT"] (name: Name) sync projects::add_project;
                ServerAdmin none "ADD PROJECT 'name'" "Creates a project.";
            RenameProject ["RENAME" "PROJECT"] (project: Int, name: Name) sync projects::rename_project;
                ServerAdmin none "RENAME PROJECT projectId 'name'" "Renames a project.";
            DeleteProject ["DELETE" "PROJECT"] (project: Int) sync projects::delete_project;
                ServerAdmin none "DELETE PROJECT projectId" "Deletes a project that has no folders.";
            AddFolder ["ADD" "FOLDER"] (project: Int, type_id: Int, name: Name) sync projects::add_folder;
                ProjectAdmin none "ADD FOLDER projectId typeId 'name'" "Creates a folder holding issues of one type.";
            RenameFolder ["RENAME" "FOLDER"] (folder: Int, name: Name) sync projects::rename_folder;
                ProjectAdmin none "RENAME FOLDER folderId 'name'" "Renames a folder.";
            DeleteFolder ["DELETE" "FOLDER"] (folder: Int) sync projects::delete_folder;
                ProjectAdmin none "DELETE FOLDER folderId" "Deletes a folder that has no issues.";
            ListIssues ["LIST" "ISSUES"] (folder: Int, since: Int) sync issues::list_issues;
                User none "LIST ISSUES folderId sinceStamp" "The folder's issues changed after sinceStamp (0: all), with their values.";
            GetDetails ["GET" "DETAILS"] (issue: Int, since: Int) sync issues::get_details;
                User none "GET DETAILS issueId sinceStamp" "An issue with its values, comments, attachments and history after sinceStamp.";
            AddIssue ["ADD" "ISSUE"] (folder: Int, name: IssueName) sync issues::add_issue;
                User none "ADD ISSUE folderId 'name'" "Creates an issue in a folder of a project you belong to.";
            RenameIssue ["RENAME" "ISSUE"] (issue: Int, name: IssueName) sync issues::rename_issue;
                User none "RENAME ISSUE issueId 'name'" "Renames an issue.";
            SetValue ["SET" "VALUE"] (issue: Int, attribute: Int, value: Value) sync issues::set_value;
                User none "SET VALUE issueId attributeId 'value'" "Sets one attribute value of an issue ('' clears it).";
            AddComment ["ADD" "COMMENT"] (issue: Int, text: Text) sync issues::add_comment;
                User none "ADD COMMENT issueId 'text'" "Adds a comment to an issue (\\n for a new line).";
            AddAttachment ["ADD" "ATTACHMENT"] (issue: Int, name: Name, description: Value, data: Data) async issues::add_attachment;
                User none "ADD ATTACHMENT issueId 'name' 'description' {size}" "Attaches a file: size raw bytes follow the line.";
            GetAttachment ["GET" "ATTACHMENT"] (attachment: Int) async issues::get_attachment;
                User none "GET ATTACHMENT attachmentId" "An attachment's bytes (DATA size, then the bytes).";
            FindItem ["FIND" "ITEM"] (item: Int) sync issues::find_item;
                User none "FIND ITEM itemId" "The issue a comment, attachment or change id belongs to.";
            ListPreferences ["LIST" "PREFERENCES"] (user: Int) sync notifications::list_preferences;
                User none "LIST PREFERENCES userId" "Your preferences (administrators: anyone's).";
            SetPreference ["SET" "PREFERENCE"] (user: Int, name: Key, value: PrefValue) sync notifications::set_preference;
                User none "SET PREFERENCE userId 'name' 'value'" "Sets a preference, e.g. 'email', 'notify-frequency' ('' deletes it).";
            ConfirmEmail ["CONFIRM" "EMAIL"] (user: Int, token: Key) sync email_pref::confirm;
                User notify "CONFIRM EMAIL userId 'token'" "Confirms your email address with the token from its confirmation mail.";
            ListNotifications ["LIST" "NOTIFICATIONS"] () sync notifications::list_notifications;
                User notify "LIST NOTIFICATIONS" "The folders and issues you watch.";
            NotifyFolder ["NOTIFY" "FOLDER"] (folder: Int, status: Int) sync notifications::notify_folder;
                User notify "NOTIFY FOLDER folderId status" "Watches a folder (1) or stops (0): its changes are mailed to you.";
            NotifyIssue ["NOTIFY" "ISSUE"] (issue: Int, status: Int) sync notifications::notify_issue;
                User notify "NOTIFY ISSUE issueId status" "Watches an issue (1) or stops (0).";
            PreviewNotifications ["PREVIEW" "NOTIFICATIONS"] (user: Int) sync notifications::preview_notifications;
                ServerAdmin notify "PREVIEW NOTIFICATIONS userId" "What a user's next digest would hold, and when it is due.";
            RunNotifications ["RUN" "NOTIFICATIONS"] () async notifications::run_notifications;
                ServerAdmin notify "RUN NOTIFICATIONS" "Runs a digest pass now.";
            ListOutbox ["LIST" "OUTBOX"] () sync notifications::list_outbox;
                ServerAdmin notify "LIST OUTBOX" "The mail queue and the state of the mail transport.";
            RetryOutbox ["RETRY" "OUTBOX"] (message: Int) sync notifications::retry_outbox;
                ServerAdmin notify "RETRY OUTBOX messageId" "Sends a queued message again now.";
            DeleteOutbox ["DELETE" "OUTBOX"] (message: Int) sync notifications::delete_outbox;
                ServerAdmin notify "DELETE OUTBOX messageId" "Drops a queued message.";
            Backup ["BACKUP"] (name: Name) async backup::backup;
                ServerAdmin none "BACKUP 'name'" "Writes a consistent copy of the data directory to [server] backup_dir/name while serving.";
            SubscribeFolder ["SUBSCRIBE" "FOLDER"] (folder: Int, subscriber: Definition, ttl: Int, options: Definition) sync subscriptions::subscribe_folder;
                User subscribe "SUBSCRIBE FOLDER folderId 'mailto:address' ttl 'options'" "Subscribes an outside address to a folder's changes, after it confirms (ttl 0: no expiry).";
            SubscribeIssue ["SUBSCRIBE" "ISSUE"] (issue: Int, subscriber: Definition, ttl: Int, options: Definition) sync subscriptions::subscribe_issue;
                User subscribe "SUBSCRIBE ISSUE issueId 'mailto:address' ttl 'options'" "Subscribes an outside address to an issue's changes, after it confirms.";
            ListSubscriptions ["LIST" "SUBSCRIPTIONS"] () sync subscriptions::list;
                User subscribe "LIST SUBSCRIPTIONS" "The subscriptions you made (administrators: all).";
            DeleteSubscription ["DELETE" "SUBSCRIPTION"] (subscription: Int) sync subscriptions::delete;
                User subscribe "DELETE SUBSCRIPTION subscriptionId" "Cancels a subscription.";
            ConfirmSubscription ["CONFIRM" "SUBSCRIPTION"] (subscription: Int, token: Key) sync subscriptions::confirm;
                User subscribe "CONFIRM SUBSCRIPTION subscriptionId 'token'" "Confirms a subscription with the token from its mail.";
        }
    };
}
