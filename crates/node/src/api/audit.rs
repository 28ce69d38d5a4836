//! The operator audit trail on the control listener: `GET /control/v1/audit` lists the
//! control actions recorded in the replicated state (`kernel::State::operator_audit`),
//! each with the operator whose token it carried, oldest first. Every node answers from
//! its own applied state, so the trail survives a takeover with the rest of the state.

use actix_web::{get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Operator;
use super::problem::Problem;
use super::AppState;
use crate::model::error::ApiError;
use gavel_kernel::OperatorRecord;

/// Most records one answer holds, and the default.
pub const MAX_AUDIT_LIMIT: usize = 10_000;
const DEFAULT_AUDIT_LIMIT: usize = 1_000;

/// Which records to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only the actions of this operator.
    pub operator: Option<String>,
    /// Only this action (`register_bidder`, `create_auction`, `qualify`, `suspend`,
    /// `resume`, `terminate`, `change_increment`, `switchover`).
    pub action: Option<String>,
    /// At most this many of the newest matching records, 1 to 10000; default 1000.
    pub limit: Option<usize>,
}

/// One control action.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRecordView {
    pub at_ms: u64,
    pub operator: String,
    pub action: String,
    /// The bidder, auction (`auction/bidder` for a qualification) or node acted on.
    pub target: String,
    pub reason: String,
    /// `ok`, or the code the action was refused with.
    pub outcome: String,
}

impl From<&OperatorRecord> for AuditRecordView {
    fn from(record: &OperatorRecord) -> Self {
        AuditRecordView {
            at_ms: record.at_ms,
            operator: record.operator.clone(),
            action: record.action.to_string(),
            target: record.target.clone(),
            reason: record.reason.clone(),
            outcome: record.outcome.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    /// Oldest first.
    pub records: Vec<AuditRecordView>,
}

/// The operator audit trail: every control action with its operator, oldest first.
#[utoipa::path(tag = "control", params(AuditQuery), responses(
    (status = 200, body = AuditList), (status = 422, description = "invalid_request", body = Problem)),
    security(("admin" = [])))]
#[get("/control/v1/audit")]
pub async fn audit_trail(
    app: web::Data<AppState>,
    _operator: Operator,
    query: web::Query<AuditQuery>,
) -> Result<web::Json<AuditList>, ApiError> {
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if !(1..=MAX_AUDIT_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_AUDIT_LIMIT}"
        )));
    }
    let state = app.state.read();
    let matching = state.kernel.operator_audit.iter().filter(|record| {
        query
            .operator
            .as_ref()
            .is_none_or(|name| &record.operator == name)
            && query
                .action
                .as_ref()
                .is_none_or(|action| &record.action == action)
    });
    let mut records: Vec<AuditRecordView> = matching
        .rev()
        .take(limit)
        .map(AuditRecordView::from)
        .collect();
    records.reverse();
    Ok(web::Json(AuditList { records }))
}

/// Turns a query string that does not parse into 422 `invalid_request`.
pub fn query_error(
    error: actix_web::error::QueryPayloadError,
    _request: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::invalid(format!("bad query string: {error}")).into()
}
