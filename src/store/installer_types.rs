//! `[server] initial_data = "webissues"`: the issue types the WebIssues Server 1.1
//! installer creates by default, with the same names, ids and definitions (as its LIST
//! TYPES shows them), so a team moving from it, or a 1.1 client, finds what it knows.
//! Its public views and view settings come with them ([`VIEWS`], [`SETTINGS`]).

use super::{Writer, types, views};
use crate::error::Result;

/// Types in id order, each with its attributes in id order.
pub const TYPES: [(&str, &[(&str, &str)]); 3] = [
    ("Forum", &[]),
    (
        "Bugs",
        &[
            ("Assigned To", "USER members=1"),
            (
                "Status",
                r#"ENUM items={"Active","Resolved","Closed"} required=1 default="Active""#,
            ),
            (
                "Reason",
                r#"ENUM items={"Fixed","Obsolete","Duplicate","As Designed","Unable To Reproduce","Test Failed"}"#,
            ),
            (
                "Severity",
                r#"NUMERIC min-value="1" max-value="3" required=1 default="2""#,
            ),
            ("Version", "TEXT"),
        ],
    ),
    (
        "Tasks",
        &[
            ("Assigned To", "USER members=1"),
            (
                "Status",
                r#"ENUM items={"Active","Completed","Closed"} required=1 default="Active""#,
            ),
            (
                "Priority",
                r#"NUMERIC min-value="1" max-value="3" required=1 default="2""#,
            ),
            ("Progress", r#"NUMERIC min-value="0" max-value="100""#),
            ("Due Date", "DATETIME"),
        ],
    ),
];

/// The installer's public views: (type id, name, definition), in id order.
pub const VIEWS: [(u64, &str, &str); 10] = [
    (
        2,
        "Created By Me",
        r#"VIEW columns="1,0,4,5,1001,1002,1004" sort-column=1 filters={"EQ column=3 value=\"[Me]\""}"#,
    ),
    (
        2,
        "Active Bugs",
        r#"VIEW columns="1,0,4,5,1001,1004" sort-column=1 filters={"EQ column=1002 value=\"Active\""}"#,
    ),
    (
        2,
        "My Active Bugs",
        r#"VIEW columns="1,0,4,5,2,3,1004" sort-column=1 filters={"EQ column=1001 value=\"[Me]\"","EQ column=1002 value=\"Active\""}"#,
    ),
    (
        2,
        "Unassigned Bugs",
        r#"VIEW columns="1,0,4,5,2,3,1004" sort-column=1 filters={"EQ column=1001 value=\"\"","EQ column=1002 value=\"Active\""}"#,
    ),
    (
        2,
        "Resolved Bugs",
        r#"VIEW columns="1,0,4,5,1001,1003,1004" sort-column=1 filters={"EQ column=1002 value=\"Resolved\""}"#,
    ),
    (
        3,
        "Created By Me",
        r#"VIEW columns="1,0,4,5,1006,1007,1008" sort-column=1 filters={"EQ column=3 value=\"[Me]\""}"#,
    ),
    (
        3,
        "Active Tasks",
        r#"VIEW columns="1,0,4,5,1006,1008,1009,1010" sort-column=1 filters={"EQ column=1007 value=\"Active\""}"#,
    ),
    (
        3,
        "My Active Tasks",
        r#"VIEW columns="1,0,4,5,1008,1009,1010" sort-column=1 filters={"EQ column=1006 value=\"[Me]\"","EQ column=1007 value=\"Active\""}"#,
    ),
    (
        3,
        "Unassigned Tasks",
        r#"VIEW columns="1,0,4,5,1008,1010" sort-column=1 filters={"EQ column=1006 value=\"\"","EQ column=1007 value=\"Active\""}"#,
    ),
    (
        3,
        "Completed Tasks",
        r#"VIEW columns="1,0,4,5,1006,1008" sort-column=1 filters={"EQ column=1007 value=\"Completed\""}"#,
    ),
];

/// The installer's view settings: (type id, key, value).
pub const SETTINGS: [(u64, &str, &str); 5] = [
    (1, "default_view", r#"VIEW columns="1,0,4,5" sort-column=1"#),
    (2, "attribute_order", "1,2,3,4,5"),
    (
        2,
        "default_view",
        r#"VIEW columns="1,0,4,5,1001,1002,1004" sort-column=1"#,
    ),
    (3, "attribute_order", "6,7,8,9,10"),
    (
        3,
        "default_view",
        r#"VIEW columns="1,0,4,5,1006,1007,1008" sort-column=1"#,
    ),
];

pub fn create(w: &mut Writer) -> Result<()> {
    for (name, attributes) in TYPES {
        let id = types::insert(w, name)? as i64;
        for (attr, def) in attributes {
            types::insert_attribute(w, id, attr, def)?;
        }
    }
    for (type_id, name, definition) in VIEWS {
        views::insert(w, type_id, name, definition, None)?;
    }
    for (type_id, key, value) in SETTINGS {
        views::set_setting(w, type_id, key, value)?;
    }
    Ok(())
}
