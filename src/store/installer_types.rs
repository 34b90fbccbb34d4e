//! `[server] initial_data = "webissues"`: the issue types the WebIssues Server 1.1
//! installer creates by default, with the same names, ids and definitions (as its LIST
//! TYPES shows them), so a team moving from it, or a 1.1 client, finds what it knows.
//! Its views are not served, so none are created.

use super::{Writer, types};
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

pub fn create(w: &mut Writer) -> Result<()> {
    for (name, attributes) in TYPES {
        let id = types::insert(w, name)? as i64;
        for (attr, def) in attributes {
            types::insert_attribute(w, id, attr, def)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_definition_is_valid() {
        for (_, attributes) in super::TYPES {
            for (name, def) in attributes {
                crate::attributes::AttributeDef::parse(def)
                    .unwrap_or_else(|e| panic!("{name}: {def}: {e}"));
            }
        }
    }
}
