//! HELP and HELP 'COMMAND NAME' (extension `help`): the commands the caller may use, one
//! line each with its arguments, or one command's signature and what it does.

use super::Cx;
use crate::error::{Code, Error, Result};
use crate::protocol::help::{COMMANDS, Who, find};
use crate::protocol::{Line, Reply};
use crate::store::users;

pub fn help(cx: &mut Cx, name: Option<String>) -> Result<Reply> {
    let features = cx.shared.features();
    let offered = |f: Option<&str>| f.is_none_or(|f| features.contains(&f));
    if let Some(name) = name {
        return match find(&name).filter(|e| offered(e.feature)) {
            Some(e) => Ok(Reply::Lines(vec![
                Line::new("H").str(e.signature).str(e.sentence),
            ])),
            None => Err(Error::with(
                Code::UnknownCommand,
                format!(
                    "no command '{}'; HELP lists them",
                    crate::error::printable(&name, 40)
                ),
            )),
        };
    }
    let most = match cx.session.user {
        None => Who::Anyone,
        Some(_) => {
            let me = cx.user()?;
            if me.access == users::ACCESS_ADMIN {
                Who::ServerAdmin
            } else if cx
                .read(|r| users::projects_of(r, me.id))?
                .iter()
                .any(|&(_, a)| a == users::ACCESS_ADMIN)
            {
                Who::ProjectAdmin
            } else {
                Who::User
            }
        }
    };
    Ok(Reply::Lines(
        COMMANDS
            .iter()
            .filter(|e| e.who <= most && offered(e.feature))
            .map(|e| Line::new("H").str(e.signature))
            .collect(),
    ))
}
