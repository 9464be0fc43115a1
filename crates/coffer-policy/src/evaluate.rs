//! Evaluation of one document against one request: a statement applies when its principal,
//! action, resource and every condition match; any applying Deny wins over every Allow.

use crate::document::{Document, Effect, Statement};
use crate::request::RequestView;
use crate::{Evaluation, Kind, Request, StatementRef, actions};

pub(crate) fn evaluate(document: &Document, kind: Kind, request: &Request<'_>) -> Evaluation {
    let view = RequestView { request };
    let mut allowed = None;
    for (index, statement) in document.statements.iter().enumerate() {
        if !applies(statement, kind, &view) {
            continue;
        }
        let decided = StatementRef {
            index,
            sid: statement.sid.clone(),
        };
        match statement.effect {
            Effect::Deny => return Evaluation::Deny(decided),
            Effect::Allow => {
                allowed.get_or_insert(decided);
            }
        }
    }
    allowed.map_or(Evaluation::NotApplicable, Evaluation::Allow)
}

fn applies(statement: &Statement, kind: Kind, view: &RequestView<'_>) -> bool {
    let request = view.request;
    let principal_matches = match (&statement.principal, kind) {
        (Some(p), _) => p.principals.includes(&request.caller) != p.negated,
        // Validation guarantees a resource policy's statements name principals.
        (None, Kind::Resource) => false,
        (None, Kind::Identity) => true,
    };
    if !principal_matches {
        return false;
    }
    let action = &statement.action;
    if actions::matches(&action.patterns, request.action) == action.negated {
        return false;
    }
    if let Some(resource) = &statement.resource {
        let lookup = |key: &str| view.first(key);
        let any = resource
            .patterns
            .iter()
            .any(|p| p.matches(request.resource, false, &lookup));
        if any == resource.negated {
            return false;
        }
    }
    statement.conditions.iter().all(|c| c.holds(view))
}
