//! The OpenAPI 3 documents of both listeners, generated from the handlers' annotations
//! (utoipa) and served at `/openapi.json`.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{control, dashboard, events, public};

struct SessionAuth;

impl Modify for SessionAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

struct AdminAuth;

impl Modify for AdminAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Gavel public API", description = "Bidding: sessions, auctions, bids, live events."),
    paths(public::server_time, public::create_session, public::delete_session, public::list_auctions,
        public::get_auction, public::list_bids, public::place_bid, public::confirm, events::auction_events, events::all_events),
    modifiers(&SessionAuth)
)]
pub struct PublicApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Gavel control API", description = "Operations: bidders, auctions, qualifications, phase actions, cluster, janitor."),
    paths(control::register_bidder, control::create_auction, control::list_auctions, control::qualify,
        control::suspend, control::resume, control::terminate, control::change_increment, control::result,
        control::cluster, control::switchover, control::janitor, control::inject_panic, dashboard::stats),
    modifiers(&AdminAuth)
)]
pub struct ControlApi;

pub async fn public_document() -> HttpResponse {
    HttpResponse::Ok().json(PublicApi::openapi())
}

pub async fn control_document() -> HttpResponse {
    HttpResponse::Ok().json(ControlApi::openapi())
}
