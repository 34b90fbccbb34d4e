//! The issue tracker over real TCP: every tracker command with its success reply, each error
//! code it can raise, and each role (anonymous, outsider, member, project admin, server
//! admin). Ids: users 1 admin, 2 alice (project admin), 3 bob (member), 4 eve (outsider);
//! type 1 "Bugs" with attributes 1 Status, 2 Severity, 3 Assigned To; project 1 "Backend".

mod support;

use support::{Client, Server};

struct World {
    server: Server,
    admin: Client,
    alice: Client,
    bob: Client,
    eve: Client,
}

fn world() -> World {
    world_with("")
}

fn world_with(config: &str) -> World {
    let server = Server::start_with(config);
    let mut admin = server.admin();
    assert_eq!(admin.id("ADD USER 'alice' 'Alice Adams' 'pw'"), 2);
    assert_eq!(admin.id("ADD USER 'bob' 'Bob Brown' 'pw'"), 3);
    assert_eq!(admin.id("ADD USER 'eve' 'Eve Evans' 'pw'"), 4);
    assert_eq!(admin.id("ADD PROJECT 'Backend'"), 1);
    assert_eq!(admin.one("GRANT MEMBER 2 1 2"), "OK");
    assert_eq!(admin.one("GRANT MEMBER 3 1 1"), "OK");
    let login = |name: &str| {
        let mut c = server.connect();
        c.login(name, "pw");
        c
    };
    let (alice, bob, eve) = (login("alice"), login("bob"), login("eve"));
    World {
        server,
        admin,
        alice,
        bob,
        eve,
    }
}

fn err(code: u16) -> String {
    format!("ERROR {code} ")
}

#[track_caller]
fn assert_err(c: &mut Client, line: &str, code: u16) {
    let r = c.one(line);
    assert!(
        r.starts_with(&err(code)),
        "{line:?} answered {r:?}, expected {code}"
    );
}

/// Sends `line {size}` followed by the bytes.
fn attach(c: &mut Client, line: &str, data: &[u8]) -> Vec<String> {
    let mut bytes = format!("{line} {{{}}}\n", data.len()).into_bytes();
    bytes.extend_from_slice(data);
    c.write_raw(&bytes);
    c.read_reply()
}

/// Every tracker command but ADD ATTACHMENT (which needs its literal to parse at all).
const TRACKER_COMMANDS: [&str; 24] = [
    "LIST TYPES",
    "ADD TYPE 'T'",
    "RENAME TYPE 1 'T'",
    "DELETE TYPE 1",
    "ADD ATTRIBUTE 1 'A' 'TEXT'",
    "RENAME ATTRIBUTE 1 'A'",
    "MODIFY ATTRIBUTE 1 'TEXT'",
    "DELETE ATTRIBUTE 1",
    "LIST PROJECTS",
    "ADD PROJECT 'P'",
    "RENAME PROJECT 1 'P'",
    "DELETE PROJECT 1",
    "ADD FOLDER 1 1 'F'",
    "RENAME FOLDER 1 'F'",
    "DELETE FOLDER 1",
    "GRANT MEMBER 1 1 1",
    "LIST ISSUES 1 0",
    "GET DETAILS 1 0",
    "ADD ISSUE 1 'I'",
    "RENAME ISSUE 1 'I'",
    "SET VALUE 1 1 'x'",
    "ADD COMMENT 1 'c'",
    "GET ATTACHMENT 1",
    "FIND ITEM 1",
];

#[test]
fn anonymous_callers_get_login_required() {
    let server = Server::start();
    let mut c = server.connect();
    for line in TRACKER_COMMANDS {
        assert_err(&mut c, line, 300);
    }
    assert_eq!(
        attach(&mut c, "ADD ATTACHMENT 1 'a' 'b'", b"xy")[0],
        "ERROR 300 'Login Required'"
    );
}

#[test]
fn fresh_server_has_the_bugs_type() {
    let server = Server::start();
    let mut admin = server.admin();
    let r = admin.send("LIST TYPES");
    assert_eq!(r[0], "T 1 'Bugs'");
    assert_eq!(r.len(), 4);
    assert!(r[1].starts_with("A 1 1 'Status' 'ENUM "));
    assert!(r[2].starts_with("A 2 1 'Severity' 'ENUM "));
    assert_eq!(r[3], "A 3 1 'Assigned To' 'USER members=1'");
}

#[test]
fn types_are_listed_to_everyone_and_changed_by_server_admins() {
    let mut w = world();
    let all = w.admin.send("LIST TYPES");
    for c in [&mut w.alice, &mut w.bob, &mut w.eve] {
        assert_eq!(c.send("LIST TYPES"), all);
        assert_err(c, "ADD TYPE 'Tasks'", 301);
        assert_err(c, "RENAME TYPE 1 'Tasks'", 301);
        assert_err(c, "DELETE TYPE 1", 301);
        assert_err(c, "ADD ATTRIBUTE 1 'Due' 'DATETIME'", 301);
        assert_err(c, "RENAME ATTRIBUTE 1 'State'", 301);
        assert_err(c, "MODIFY ATTRIBUTE 1 'TEXT'", 301);
        assert_err(c, "DELETE ATTRIBUTE 1", 301);
    }
    let a = &mut w.admin;
    assert_eq!(a.id("ADD TYPE 'Tasks'"), 2);
    assert_err(a, "ADD TYPE 'Tasks'", 323);
    assert_err(a, "ADD TYPE ''", 340);
    assert_eq!(a.one("RENAME TYPE 2 'Chores'"), "OK");
    assert_eq!(a.one("RENAME TYPE 2 'Chores'"), "NULL");
    assert_err(a, "RENAME TYPE 2 'Bugs'", 323);
    assert_err(a, "RENAME TYPE 9 'X'", 308);
    assert_err(a, "RENAME TYPE -1 'X'", 308);

    assert_eq!(a.id("ADD ATTRIBUTE 2 'Due' 'DATETIME time=1'"), 4);
    assert_eq!(a.id("ADD ATTRIBUTE 2 'Status' 'TEXT max-length=20'"), 5);
    assert_err(a, "ADD ATTRIBUTE 2 'Due' 'TEXT'", 324);
    assert_err(a, "ADD ATTRIBUTE 9 'X' 'TEXT'", 308);
    for bad in [
        "'ENUM editable=1'",
        "'FOO'",
        "'TEXT max-length=0'",
        "'TEXT colour=1'",
        "'TEXT required=1'",
        "'NUMERIC min-value=\"5\" max-value=\"1\"'",
        "'ENUM items={\"a\",\"a\"}'",
        "'USER default=\"Nobody\"'",
        "'TEXT default=\"x\" default=\"y\"'",
    ] {
        assert_err(a, &format!("ADD ATTRIBUTE 2 'Bad' {bad}"), 343);
    }
    assert_eq!(
        a.id("ADD ATTRIBUTE 2 'Owner' 'USER default=\"Bob Brown\"'"),
        6
    );
    assert_eq!(a.one("RENAME ATTRIBUTE 4 'Deadline'"), "OK");
    assert_eq!(a.one("RENAME ATTRIBUTE 4 'Deadline'"), "NULL");
    assert_err(a, "RENAME ATTRIBUTE 4 'Status'", 324);
    assert_err(a, "RENAME ATTRIBUTE 99 'X'", 309);
    // The same name in another type is fine.
    assert_eq!(a.one("RENAME ATTRIBUTE 4 'Severity'"), "OK");
    assert_eq!(a.one("MODIFY ATTRIBUTE 4 'DATETIME'"), "OK");
    assert_eq!(a.one("MODIFY ATTRIBUTE 4 'DATETIME'"), "NULL");
    assert_err(a, "MODIFY ATTRIBUTE 4 'ENUM'", 343);
    assert_err(a, "MODIFY ATTRIBUTE 99 'TEXT'", 309);
    let r = a.send("LIST TYPES");
    assert_eq!(r[0..2], ["T 1 'Bugs'", "T 2 'Chores'"]);
    assert!(
        r.contains(&"A 4 2 'Severity' 'DATETIME'".to_string()),
        "{r:?}"
    );
    assert_eq!(a.one("DELETE ATTRIBUTE 4"), "OK");
    assert_err(a, "DELETE ATTRIBUTE 4", 309);
    assert_eq!(a.one("DELETE TYPE 2"), "OK");
    assert_err(a, "DELETE TYPE 2", 308);
    assert_eq!(
        a.send("LIST TYPES").len(),
        4,
        "the type's attributes went with it"
    );
    // A type used by a folder stays.
    assert_eq!(a.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_err(a, "DELETE TYPE 1", 332);
}

#[test]
fn projects_are_listed_by_membership() {
    let mut w = world();
    let a = &mut w.admin;
    assert_eq!(a.id("ADD PROJECT 'Intranet'"), 2);
    assert_err(a, "ADD PROJECT 'Intranet'", 320);
    assert_eq!(a.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_eq!(a.id("ADD FOLDER 2 1 'Secret'"), 2);
    assert_eq!(
        a.send("LIST PROJECTS"),
        [
            "P 1 'Backend'",
            "P 2 'Intranet'",
            "F 1 1 'Crashes' 1 0",
            "F 2 2 'Secret' 1 0"
        ]
    );
    let mine = ["P 1 'Backend'", "F 1 1 'Crashes' 1 0"];
    assert_eq!(w.alice.send("LIST PROJECTS"), mine);
    assert_eq!(w.bob.send("LIST PROJECTS"), mine);
    assert_eq!(w.eve.send("LIST PROJECTS"), ["NULL"]);
}

#[test]
fn projects_are_managed_by_server_admins() {
    let mut w = world();
    for c in [&mut w.alice, &mut w.bob, &mut w.eve] {
        assert_err(c, "ADD PROJECT 'X'", 301);
        assert_err(c, "RENAME PROJECT 1 'X'", 301);
        assert_err(c, "DELETE PROJECT 1", 301);
    }
    let a = &mut w.admin;
    assert_eq!(a.id("ADD PROJECT 'Intranet'"), 2);
    assert_eq!(a.one("RENAME PROJECT 2 'Extranet'"), "OK");
    assert_eq!(a.one("RENAME PROJECT 2 'Extranet'"), "NULL");
    assert_err(a, "RENAME PROJECT 2 'Backend'", 320);
    assert_err(a, "RENAME PROJECT 7 'X'", 303);
    assert_err(
        a,
        "ADD PROJECT 'this name is much too long for any project'",
        340,
    );
    // Trailing spaces are stripped from names.
    assert_eq!(a.one("RENAME PROJECT 2 'Extranet  '"), "NULL");
    assert_eq!(a.id("ADD FOLDER 2 1 'F'"), 1);
    assert_err(a, "DELETE PROJECT 2", 330);
    assert_eq!(a.one("DELETE FOLDER 1"), "OK");
    assert_eq!(a.one("GRANT MEMBER 4 2 1"), "OK");
    assert_eq!(a.one("DELETE PROJECT 2"), "OK");
    assert_err(a, "DELETE PROJECT 2", 303);
    // Its memberships went with it.
    let users = a.send("LIST USERS");
    assert!(!users.iter().any(|l| l.starts_with("M 4 ")), "{users:?}");
    assert_eq!(w.eve.send("LIST PROJECTS"), ["NULL"]);
}

#[test]
fn folders_are_managed_by_project_admins() {
    let mut w = world();
    assert_eq!(w.alice.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_eq!(w.admin.id("ADD FOLDER 1 1 'Requests'"), 2);
    assert_err(&mut w.alice, "ADD FOLDER 1 1 'Crashes'", 321);
    assert_err(&mut w.alice, "ADD FOLDER 1 7 'Other'", 308);
    assert_err(&mut w.alice, "ADD FOLDER 9 1 'Other'", 303);
    assert_err(&mut w.bob, "ADD FOLDER 1 1 'Other'", 301);
    assert_err(&mut w.eve, "ADD FOLDER 1 1 'Other'", 303);

    assert_eq!(w.alice.one("RENAME FOLDER 2 'Ideas'"), "OK");
    assert_eq!(w.alice.one("RENAME FOLDER 2 'Ideas'"), "NULL");
    assert_err(&mut w.alice, "RENAME FOLDER 2 'Crashes'", 321);
    assert_err(&mut w.alice, "RENAME FOLDER 9 'X'", 304);
    assert_err(&mut w.bob, "RENAME FOLDER 2 'X'", 301);
    assert_err(&mut w.eve, "RENAME FOLDER 2 'X'", 304);
    assert_eq!(w.admin.one("RENAME FOLDER 2 'Wishes'"), "OK");

    assert_eq!(w.bob.id("ADD ISSUE 1 'Crash'"), 1);
    assert_err(&mut w.alice, "DELETE FOLDER 1", 331);
    assert_err(&mut w.bob, "DELETE FOLDER 2", 301);
    assert_err(&mut w.eve, "DELETE FOLDER 2", 304);
    assert_eq!(w.alice.one("DELETE FOLDER 2"), "OK");
    assert_err(&mut w.alice, "DELETE FOLDER 2", 304);
    assert_eq!(
        w.bob.send("LIST PROJECTS"),
        ["P 1 'Backend'", "F 1 1 'Crashes' 1 1"]
    );
}

#[test]
fn members_are_granted_by_project_admins() {
    let mut w = world();
    assert_eq!(w.alice.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_eq!(w.bob.id("ADD ISSUE 1 'Crash'"), 1);
    assert_err(&mut w.bob, "GRANT MEMBER 4 1 1", 301);
    assert_err(&mut w.eve, "GRANT MEMBER 4 1 1", 303);
    assert_err(&mut w.alice, "GRANT MEMBER 4 9 1", 303);
    assert_err(&mut w.alice, "GRANT MEMBER 9 1 1", 307);
    assert_err(&mut w.alice, "GRANT MEMBER 4 1 3", 341);
    assert_err(&mut w.alice, "GRANT MEMBER 4 1 -1", 341);
    assert_eq!(w.alice.one("GRANT MEMBER 4 1 1"), "OK");
    assert_eq!(w.alice.one("GRANT MEMBER 4 1 1"), "NULL");
    assert_eq!(w.eve.send("LIST PROJECTS")[0], "P 1 'Backend'");
    assert_eq!(
        w.eve.send("LIST ISSUES 1 0")[0].split(' ').nth(1),
        Some("1")
    );
    // Eve now sees the project's memberships in LIST USERS.
    let users = w.eve.send("LIST USERS");
    assert!(users.contains(&"M 2 1 2".to_string()), "{users:?}");
    // Promoting and removing; server admins may grant too.
    assert_eq!(w.admin.one("GRANT MEMBER 3 1 2"), "OK");
    assert_eq!(w.bob.id("ADD FOLDER 1 1 'Bob'"), 2);
    assert_eq!(w.alice.one("GRANT MEMBER 4 1 0"), "OK");
    assert_eq!(w.alice.one("GRANT MEMBER 4 1 0"), "NULL");
    // A removed member sees nothing any more, at once.
    assert_eq!(w.eve.send("LIST PROJECTS"), ["NULL"]);
    assert_err(&mut w.eve, "LIST ISSUES 1 0", 304);
    assert_err(&mut w.eve, "GET DETAILS 1 0", 305);
    let users = w.eve.send("LIST USERS");
    assert!(!users.iter().any(|l| l.starts_with('M')), "{users:?}");
}

#[test]
fn issues_values_comments_and_stamps() {
    let mut w = world();
    assert_eq!(w.alice.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_eq!(w.admin.id("ADD TYPE 'Tasks'"), 2);
    assert_eq!(
        w.admin
            .id("ADD ATTRIBUTE 2 'Cost' 'NUMERIC decimal=2 max-value=\"100\"'"),
        4
    );
    assert_eq!(w.admin.id("ADD FOLDER 1 2 'Tasks'"), 2);

    // Members and server admins (even without membership) file issues.
    assert_eq!(w.bob.id("ADD ISSUE 1 'Crash on start'"), 1);
    assert_eq!(w.admin.id("ADD ISSUE 2 'Buy coffee'"), 2);
    assert_err(&mut w.eve, "ADD ISSUE 1 'Spam'", 304);
    assert_err(&mut w.bob, "ADD ISSUE 9 'X'", 304);
    assert_err(&mut w.bob, "ADD ISSUE 1 ''", 340);
    assert_err(&mut w.bob, "ADD ISSUE 1 '   '", 340);

    let r = w.bob.send("LIST ISSUES 1 0");
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(r[0].starts_with("I 1 1 'Crash on start' 1 "), "{r:?}");
    assert!(r[0].ends_with(" 3"), "{r:?}");
    assert_eq!(r[1..], ["V 1 1 'New'", "V 2 1 'Medium'"]);
    // An issue of a type without defaults has no V lines.
    assert_eq!(w.alice.send("LIST ISSUES 2 0").len(), 1);

    // SET VALUE: validated, normalised, no-ops answer NULL and take no stamp.
    assert_eq!(w.alice.id("SET VALUE 2 4 '7.5'"), 3);
    assert_eq!(w.alice.one("SET VALUE 2 4 '07.50'"), "NULL");
    assert_err(&mut w.alice, "SET VALUE 2 4 '101'", 342);
    assert_err(&mut w.alice, "SET VALUE 2 4 'abc'", 342);
    assert_err(&mut w.alice, "SET VALUE 2 4 '1.234'", 342);
    assert_err(&mut w.alice, "SET VALUE 2 1 'Open'", 309);
    assert_err(&mut w.alice, "SET VALUE 2 99 'x'", 309);
    assert_err(&mut w.alice, "SET VALUE 99 4 '1'", 305);
    assert_err(&mut w.eve, "SET VALUE 2 4 '1'", 305);
    assert_err(&mut w.alice, "SET VALUE 2 4 'a\\nb'", 340);
    assert_eq!(w.alice.send("LIST ISSUES 2 0")[1], "V 4 2 '7.50'");
    assert_eq!(w.alice.id("SET VALUE 2 4 ''"), 4);
    assert_eq!(
        w.alice.send("LIST ISSUES 2 0").len(),
        1,
        "empty values are not listed"
    );
    assert_err(&mut w.bob, "SET VALUE 1 3 'Eve Evans'", 342);
    assert_err(&mut w.bob, "SET VALUE 1 3 'Nobody'", 342);
    assert_eq!(w.bob.id("SET VALUE 1 3 'Alice Adams'"), 5);

    // RENAME ISSUE
    assert_eq!(w.bob.id("RENAME ISSUE 1 'Crash at start'"), 6);
    assert_eq!(w.bob.one("RENAME ISSUE 1 'Crash at start '"), "NULL");
    assert_err(&mut w.bob, "RENAME ISSUE 99 'X'", 305);
    assert_err(&mut w.eve, "RENAME ISSUE 1 'X'", 305);
    assert_err(&mut w.bob, "RENAME ISSUE 1 ''", 340);

    // ADD COMMENT
    assert_eq!(w.alice.id("ADD COMMENT 1 'Line one\\nLine\\ttwo'"), 7);
    assert_err(&mut w.alice, "ADD COMMENT 1 ''", 340);
    assert_err(&mut w.alice, "ADD COMMENT 99 'x'", 305);
    assert_err(&mut w.eve, "ADD COMMENT 1 'x'", 305);

    // Folder stamps follow the latest issue stamp.
    assert_eq!(
        w.bob.send("LIST PROJECTS"),
        ["P 1 'Backend'", "F 1 1 'Crashes' 1 7", "F 2 1 'Tasks' 2 4"]
    );
    // LIST ISSUES since a stamp.
    assert_eq!(w.bob.send("LIST ISSUES 1 7"), ["NULL"]);
    assert_eq!(w.bob.send("LIST ISSUES 1 6").len(), 4);
    assert_eq!(w.bob.send("LIST ISSUES 1 -5").len(), 4);
    assert_err(&mut w.eve, "LIST ISSUES 1 0", 304);
    assert_err(&mut w.bob, "LIST ISSUES 9 0", 304);

    // GET DETAILS: NULL when nothing is newer, else I, all V, new C/A/H rows.
    assert_eq!(w.bob.send("GET DETAILS 1 7"), ["NULL"]);
    let d = w.bob.send("GET DETAILS 1 0");
    assert!(d[0].starts_with("I 1 1 'Crash at start' 7 "), "{d:?}");
    let f: Vec<&str> = d[0].rsplitn(5, ' ').collect();
    assert_eq!(
        (f[0], f[2]),
        ("2", "3"),
        "modified by alice, created by bob: {d:?}"
    );
    assert_eq!(
        d[1..4],
        ["V 1 1 'New'", "V 2 1 'Medium'", "V 3 1 'Alice Adams'"]
    );
    assert!(
        d[4].starts_with("C 7 1 ") && d[4].ends_with(" 2 'Line one\\nLine\ttwo'"),
        "{d:?}"
    );
    assert!(
        d[5].starts_with("H 5 1 ") && d[5].ends_with(" 3 3 '' 'Alice Adams'"),
        "{d:?}"
    );
    assert!(
        d[6].starts_with("H 6 1 ") && d[6].ends_with(" 3 0 'Crash on start' 'Crash at start'"),
        "{d:?}"
    );
    assert_eq!(d.len(), 7);
    let d = w.bob.send("GET DETAILS 1 6");
    assert_eq!(d.len(), 5, "I, three V and the comment: {d:?}");
    assert_err(&mut w.bob, "GET DETAILS 99 0", 305);
    assert_err(&mut w.eve, "GET DETAILS 1 0", 305);
    let d = w.alice.send("GET DETAILS 2 0");
    assert!(
        d[1].ends_with(" 2 4 '' '7.50'") && d[2].ends_with(" 2 4 '7.50' ''"),
        "{d:?}"
    );
}

#[test]
fn attachments_travel_as_literals() {
    let mut w = world_with("[server]\nmax_attachment_bytes = 1000\n");
    assert_eq!(w.alice.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_eq!(w.bob.id("ADD ISSUE 1 'Crash'"), 1);
    // Bytes that look like protocol: line ends, empty lines, quotes, a literal marker.
    let data = b"line\r\n\r\nERROR 300 'x'\n{3}\nend";
    assert_eq!(
        attach(&mut w.bob, "ADD ATTACHMENT 1 'log.txt' 'The log'", data),
        ["ID 2"]
    );
    assert_eq!(
        attach(&mut w.alice, "ADD ATTACHMENT 1 'empty.txt' ''", b""),
        ["ID 3"]
    );
    let r = w.eve.send("GET ATTACHMENT 2");
    assert_eq!(r, ["ERROR 306 'Unknown Attachment'"]);
    let r = w.bob.send("GET ATTACHMENT 2");
    assert_eq!(
        r,
        [
            format!("DATA {}", data.len()),
            String::from_utf8(data.to_vec()).unwrap()
        ]
    );
    assert_eq!(w.admin.send("GET ATTACHMENT 3"), ["DATA 0", ""]);
    // Errors: unknown issue, invisible issue, no data, too large, bad name.
    assert_eq!(
        attach(&mut w.bob, "ADD ATTACHMENT 9 'a' ''", b"x")[0],
        "ERROR 305 'Unknown Issue'"
    );
    assert_eq!(
        attach(&mut w.eve, "ADD ATTACHMENT 1 'a' ''", b"x")[0],
        "ERROR 305 'Unknown Issue'"
    );
    assert_err(&mut w.bob, "ADD ATTACHMENT 1 'a' ''", 403);
    let big = vec![b'x'; 1001];
    assert!(attach(&mut w.bob, "ADD ATTACHMENT 1 'a' ''", &big)[0].starts_with("ERROR 403 "));
    let long = "n".repeat(41);
    assert!(
        attach(&mut w.bob, &format!("ADD ATTACHMENT 1 '{long}' ''"), b"x")[0]
            .starts_with("ERROR 340 ")
    );
    // The connection is still in step after all that.
    assert_eq!(w.bob.send("FIND ITEM 2"), ["ID 1"]);
    assert_err(&mut w.bob, "GET ATTACHMENT 1", 306);
    assert_err(&mut w.bob, "GET ATTACHMENT 99", 306);
    assert_err(&mut w.bob, "GET ATTACHMENT -1", 306);
    let d = w.bob.send("GET DETAILS 1 1");
    assert!(
        d[3].starts_with("A 2 1 'log.txt' ")
            && d[3].ends_with(&format!(" 3 {} 'The log'", data.len())),
        "{d:?}"
    );
    assert!(
        d[4].starts_with("A 3 1 'empty.txt' ") && d[4].ends_with(" 2 0 ''"),
        "{d:?}"
    );
    // The bytes live in files, not in sled.
    let files = std::fs::read_dir(w.server.data_dir().join("attachments"))
        .unwrap()
        .count();
    assert_eq!(files, 2);
}

#[test]
fn pipelined_attachments_keep_their_order() {
    let mut w = world();
    assert_eq!(w.alice.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_eq!(w.bob.id("ADD ISSUE 1 'Crash'"), 1);
    let mut batch = Vec::new();
    for i in 0..5 {
        batch.extend_from_slice(format!("ADD ATTACHMENT 1 'f{i}' '' {{4}}\r\n").as_bytes());
        batch.extend_from_slice(format!("abc{i}").as_bytes());
        batch.extend_from_slice(b"FIND ITEM 1\r\n");
    }
    w.bob.write_raw(&batch);
    for i in 0..5 {
        assert_eq!(w.bob.read_reply(), [format!("ID {}", 2 + i)]);
        assert_eq!(w.bob.read_reply(), ["ID 1"]);
    }
    assert_eq!(w.bob.send("GET ATTACHMENT 4"), ["DATA 4", "abc2"]);
}

#[test]
fn find_item_answers_the_owning_issue() {
    let mut w = world();
    assert_eq!(w.alice.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_eq!(w.bob.id("ADD ISSUE 1 'Crash'"), 1);
    assert_eq!(w.bob.id("ADD COMMENT 1 'c'"), 2);
    assert_eq!(w.bob.id("SET VALUE 1 1 'Open'"), 3);
    assert_eq!(
        attach(&mut w.bob, "ADD ATTACHMENT 1 'a' ''", b"x"),
        ["ID 4"]
    );
    assert_eq!(w.bob.id("ADD ISSUE 1 'Other'"), 5);
    for (item, issue) in [(1, 1), (2, 1), (3, 1), (4, 1), (5, 5)] {
        assert_eq!(
            w.bob.one(&format!("FIND ITEM {item}")),
            format!("ID {issue}")
        );
        assert_eq!(
            w.admin.one(&format!("FIND ITEM {item}")),
            format!("ID {issue}")
        );
        assert_err(&mut w.eve, &format!("FIND ITEM {item}"), 305);
    }
    for item in [0, -3, 6, 1000] {
        assert_err(&mut w.bob, &format!("FIND ITEM {item}"), 305);
    }
}

/// ADD ISSUE stores the defaults the type has when it runs, also after an earlier ADD ISSUE
/// of the same type and a change of its attributes in between.
#[test]
fn new_issues_get_the_defaults_the_type_has_now() {
    let mut w = world();
    assert_eq!(w.alice.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_eq!(w.bob.id("ADD ISSUE 1 'First'"), 1);
    assert_eq!(
        w.bob.send("LIST ISSUES 1 0")[1..],
        ["V 1 1 'New'", "V 2 1 'Medium'"]
    );
    assert_eq!(
        w.admin.id("ADD ATTRIBUTE 1 'Area' 'TEXT default=\"Core\"'"),
        4
    );
    assert_eq!(
        w.admin.one(
            "MODIFY ATTRIBUTE 2 'ENUM items={\"Low\",\"Medium\",\"High\"} default=\"Low\" required=1'"
        ),
        "OK"
    );
    let id = w.bob.id("ADD ISSUE 1 'Second'");
    assert_eq!(
        w.bob.send(&format!("LIST ISSUES 1 {}", id - 1))[1..],
        [
            format!("V 1 {id} 'New'"),
            format!("V 2 {id} 'Low'"),
            format!("V 4 {id} 'Core'")
        ]
    );
}

#[test]
fn delete_attribute_removes_values_and_history() {
    let mut w = world();
    assert_eq!(w.alice.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_eq!(w.bob.id("ADD ISSUE 1 'Crash'"), 1);
    assert_eq!(w.bob.id("SET VALUE 1 2 'High'"), 2);
    assert_eq!(w.bob.id("SET VALUE 1 1 'Open'"), 3);
    // Read once before: nothing read then may outlive the attribute.
    let before = w.bob.send("GET DETAILS 1 0");
    assert!(before.contains(&"V 2 1 'High'".to_string()), "{before:?}");
    assert_eq!(w.admin.one("DELETE ATTRIBUTE 2"), "OK");
    let d = w.bob.send("GET DETAILS 1 0");
    assert_eq!(d.len(), 3, "{d:?}");
    assert!(
        d[0].starts_with("I 1 1 'Crash' 3 "),
        "the issue stamp does not move"
    );
    assert_eq!(d[1], "V 1 1 'Open'");
    assert!(d[2].starts_with("H 3 1 "));
    assert_err(&mut w.bob, "FIND ITEM 2", 305);
    assert_err(&mut w.bob, "SET VALUE 1 2 'Low'", 309);
    // New issues get no default for it any more.
    assert_eq!(w.bob.id("ADD ISSUE 1 'Next'"), 4);
    assert_eq!(w.bob.send("LIST ISSUES 1 3")[1..], ["V 1 4 'New'"]);
}

#[test]
fn disabled_users_lose_access_at_once() {
    let mut w = world();
    assert_eq!(w.alice.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_eq!(w.admin.one("GRANT USER 3 0"), "OK");
    assert_err(&mut w.bob, "LIST PROJECTS", 300);
    assert_err(&mut w.bob, "ADD ISSUE 1 'x'", 300);
}

/// Everything listed before a restart (after kill -9) is listed identically after it, and
/// new stamps continue the sequence.
#[test]
fn restart_keeps_everything() {
    let mut w = world();
    assert_eq!(w.alice.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_eq!(w.admin.id("ADD TYPE 'Tasks'"), 2);
    assert_eq!(w.admin.id("ADD ATTRIBUTE 2 'Due' 'DATETIME'"), 4);
    assert_eq!(w.alice.id("ADD FOLDER 1 2 'Todo'"), 2);
    assert_eq!(w.bob.id("ADD ISSUE 1 'Crash'"), 1);
    assert_eq!(w.bob.id("SET VALUE 1 3 'Alice Adams'"), 2);
    assert_eq!(w.bob.id("ADD COMMENT 1 'It\\'s bad.\\nReally.'"), 3);
    assert_eq!(
        attach(
            &mut w.bob,
            "ADD ATTACHMENT 1 'a.bin' 'bytes'",
            b"\x01\x02\r\n"
        ),
        ["ID 4"]
    );
    assert_eq!(w.alice.id("ADD ISSUE 2 'Plan'"), 5);
    assert_eq!(w.alice.id("SET VALUE 5 4 '2024-02-29'"), 6);
    assert_eq!(w.alice.id("RENAME ISSUE 5 'Plan it'"), 7);

    let snapshot = |c: &mut Client| -> Vec<Vec<String>> {
        [
            "LIST TYPES",
            "LIST PROJECTS",
            "LIST USERS",
            "LIST ISSUES 1 0",
            "LIST ISSUES 2 0",
            "GET DETAILS 1 0",
            "GET DETAILS 5 0",
            "GET ATTACHMENT 4",
            "FIND ITEM 6",
        ]
        .iter()
        .map(|l| c.send(l))
        .collect()
    };
    let before_admin = snapshot(&mut w.admin);
    let before_bob = snapshot(&mut w.bob);
    let before_eve = snapshot(&mut w.eve);
    w.server.restart();
    let mut admin = w.server.admin();
    let login = |name: &str| {
        let mut c = w.server.connect();
        c.login(name, "pw");
        c
    };
    let (mut bob, mut eve) = (login("bob"), login("eve"));
    assert_eq!(snapshot(&mut admin), before_admin);
    assert_eq!(snapshot(&mut bob), before_bob);
    assert_eq!(snapshot(&mut eve), before_eve);
    assert_eq!(bob.id("ADD COMMENT 1 'after'"), 8);
    assert_eq!(admin.id("ADD PROJECT 'Next'"), 2);
    assert_eq!(admin.id("ADD TYPE 'More'"), 3);
}

/// Concurrent writers share the one stamp sequence: every id is unique, and the folder
/// stamp ends at the largest.
#[test]
fn concurrent_modifications_get_unique_stamps() {
    let mut w = world();
    assert_eq!(w.alice.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_eq!(w.bob.id("ADD ISSUE 1 'Crash'"), 1);
    let addr = w.server.addr;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.login("bob", "pw");
                (0..20)
                    .map(|i| c.id(&format!("ADD COMMENT 1 'thread {t} comment {i}'")))
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut ids: Vec<i64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, (2..82).collect::<Vec<i64>>());
    assert_eq!(w.bob.send("LIST PROJECTS")[1], "F 1 1 'Crashes' 1 81");
    assert_eq!(w.bob.send("GET DETAILS 1 0").len(), 1 + 2 + 80);
}

#[test]
fn deleting_an_attribute_removes_its_values_rows_and_items() {
    let mut w = world();
    assert_eq!(w.alice.id("ADD FOLDER 1 1 'Crashes'"), 1);
    let note = w.admin.id("ADD ATTRIBUTE 1 'Note' 'TEXT'");
    assert_eq!(w.bob.id("ADD ISSUE 1 'Crash'"), 1);
    let kept = w.bob.id("SET VALUE 1 1 'Open'");
    let gone = w.bob.id(&format!("SET VALUE 1 {note} 'flaky'"));
    let gone_too = w.bob.id(&format!("SET VALUE 1 {note} 'fixed'"));
    let comment = w.bob.id("ADD COMMENT 1 'still there'");
    let before = w.bob.send("GET DETAILS 1 0");
    assert!(
        before.contains(&format!("V {note} 1 'fixed'")),
        "{before:?}"
    );
    assert_eq!(
        before.iter().filter(|l| l.starts_with("H ")).count(),
        3,
        "{before:?}"
    );
    // LIST ISSUES keeps each issue's lines until its stamp moves; this does not move it.
    let listed = w.bob.send("LIST ISSUES 1 0");
    assert!(
        listed.contains(&format!("V {note} 1 'fixed'")),
        "{listed:?}"
    );
    assert_eq!(w.admin.one(&format!("DELETE ATTRIBUTE {note}")), "OK");
    let relisted = w.bob.send("LIST ISSUES 1 0");
    assert!(relisted.iter().any(|l| l == "V 1 1 'Open'"), "{relisted:?}");
    assert!(
        !relisted
            .iter()
            .any(|l| l.starts_with(&format!("V {note} "))),
        "{relisted:?}"
    );
    assert_eq!(listed[0], relisted[0], "the issue's stamp did not move");
    let after = w.bob.send("GET DETAILS 1 0");
    assert!(after.iter().any(|l| l == "V 1 1 'Open'"), "{after:?}");
    assert!(
        !after.iter().any(|l| l.starts_with(&format!("V {note} "))),
        "{after:?}"
    );
    let history: Vec<_> = after.iter().filter(|l| l.starts_with("H ")).collect();
    assert_eq!(history.len(), 1, "{after:?}");
    assert!(history[0].starts_with(&format!("H {kept} 1 ")), "{after:?}");
    assert!(
        after
            .iter()
            .any(|l| l.starts_with(&format!("C {comment} 1 ")))
    );
    for item in [gone, gone_too] {
        assert_err(&mut w.bob, &format!("FIND ITEM {item}"), 305);
    }
    for item in [1, kept, comment] {
        assert_eq!(w.bob.one(&format!("FIND ITEM {item}")), "ID 1");
    }
}

#[test]
fn list_issues_shows_each_change_after_a_listing() {
    let mut w = world();
    assert_eq!(w.alice.id("ADD FOLDER 1 1 'Crashes'"), 1);
    assert_eq!(w.bob.id("ADD ISSUE 1 'Crash'"), 1);
    w.bob.id("SET VALUE 1 1 'Open'");
    // The first listing by one user, the second by another: the lines are shared.
    let first = w.bob.send("LIST ISSUES 1 0");
    assert!(first.iter().any(|l| l == "V 1 1 'Open'"), "{first:?}");
    assert_eq!(w.alice.send("LIST ISSUES 1 0"), first);
    let stamp = w.bob.id("SET VALUE 1 1 'Closed'");
    w.bob.id("RENAME ISSUE 1 'Crash on start'");
    let second = w.alice.send("LIST ISSUES 1 0");
    assert!(second.iter().any(|l| l == "V 1 1 'Closed'"), "{second:?}");
    assert!(!second.iter().any(|l| l == "V 1 1 'Open'"), "{second:?}");
    assert!(
        second[0].starts_with("I 1 1 'Crash on start' "),
        "{second:?}"
    );
    // Since the value change: the issue is listed again, with its values.
    assert_eq!(w.alice.send(&format!("LIST ISSUES 1 {stamp}")), second);
}
