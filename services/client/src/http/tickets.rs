//! `/tickets/new` (sell), `/tickets/:id` (details, purchase, and the owner's edit form).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

use crate::state::AppState;
use common::error::ErrorItem;

use crate::backend::{BackendError, DetailsInput, Ticket, User};
use crate::http::PageError;
use crate::http::error::encode;
use crate::http::forms::{FormErrors, HtmlForm, price_value, refusal, valid_id};
use crate::http::views::{EventView, Layout, money};
use crate::http::visitor::Visitor;

const FIELDS: &[&str] = &[
    "title",
    "price",
    "venue",
    "city",
    "startsAt",
    "section",
    "row",
    "seat",
    "description",
];

#[derive(Debug, Default, Deserialize)]
pub struct TicketForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    price: String,
    #[serde(flatten)]
    details: DetailsFields,
}

/// The event's fields as typed (the form shows them again as they were).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DetailsFields {
    pub venue: String,
    pub city: String,
    /// `datetime-local`: `2030-05-01T20:00`, read as UTC (the form says so).
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    pub section: String,
    pub row: String,
    pub seat: String,
    pub description: String,
}

impl DetailsFields {
    fn of(ticket: &Ticket) -> Self {
        let d = &ticket.details;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        Self {
            venue: text(&d.venue),
            city: text(&d.city),
            starts_at: d
                .starts_at
                .map(|at| at.format("%Y-%m-%dT%H:%M").to_string())
                .unwrap_or_default(),
            section: text(&d.section),
            row: text(&d.row),
            seat: text(&d.seat),
            description: text(&d.description),
        }
    }

    /// What the service gets; a start time that is not one goes next to its field.
    fn input(&self, errors: &mut FormErrors) -> DetailsInput {
        let starts_at = match starts_at_value(&self.starts_at) {
            Ok(at) => at,
            Err(message) => {
                errors.add_field("startsAt", message);
                None
            }
        };
        DetailsInput {
            venue: self.venue.clone(),
            city: self.city.clone(),
            starts_at,
            section: self.section.clone(),
            row: self.row.clone(),
            seat: self.seat.clone(),
            description: self.description.clone(),
        }
    }
}

/// A `datetime-local` value (`2030-05-01T20:00`, seconds optional) as a UTC time: without
/// JavaScript the page cannot know the browser's offset, so the form asks for UTC. A full
/// RFC 3339 time (with its offset) is taken as it is.
pub fn starts_at_value(raw: &str) -> Result<Option<DateTime<Utc>>, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
        .map(|at| Some(at.and_utc()))
        .ok_or("Starts at must be a date and time, such as 2030-05-01T20:00")
}

#[derive(Template, WebTemplate)]
#[template(path = "ticket_new.html")]
pub struct NewTicketPage {
    layout: Layout,
    title: String,
    price: String,
    details: DetailsFields,
    errors: FormErrors,
}

/// `GET /tickets/new`
pub async fn new_page(visitor: Visitor) -> Result<NewTicketPage, PageError> {
    let user = visitor.require("/tickets/new")?;
    Ok(NewTicketPage {
        layout: Layout::new("Sell a ticket", Some(user)),
        title: String::new(),
        price: String::new(),
        details: DetailsFields::default(),
        errors: FormErrors::default(),
    })
}

/// `POST /tickets/new`: lists the ticket, then shows it.
pub async fn create(
    State(state): State<AppState>,
    visitor: Visitor,
    HtmlForm(form): HtmlForm<TicketForm>,
) -> Result<Response, PageError> {
    let user = visitor.require("/tickets/new")?;
    let again = |status: StatusCode, errors: FormErrors, form: TicketForm, user: User| {
        let page = NewTicketPage {
            layout: Layout::new("Sell a ticket", Some(user)),
            title: form.title,
            price: form.price,
            details: form.details,
            errors,
        };
        Ok((status, page).into_response())
    };
    let mut errors = FormErrors::default();
    let details = form.details.input(&mut errors);
    let price = match price_value(&form.price) {
        Ok(price) if errors.is_empty() => price,
        result => {
            if form.title.trim().is_empty() {
                errors.add_field("title", "Title is required");
            }
            if let Err(message) = result {
                errors.add_field("price", message);
            }
            return again(StatusCode::BAD_REQUEST, errors, form, user);
        }
    };
    match state
        .backend
        .create_ticket(&visitor.session, form.title.trim(), &price, &details)
        .await
    {
        Ok(reply) => {
            let ticket = reply.body;
            tracing::info!(ticket.id = %ticket.id, "ticket listed through the client");
            Ok(Redirect::to(&format!("/tickets/{}", ticket.id)).into_response())
        }
        Err(err) => {
            let (status, errors) = refusal(err)?;
            again(
                status,
                FormErrors::from_service(&errors, FIELDS, None),
                form,
                user,
            )
        }
    }
}

/// Why the Purchase button is disabled, if it is.
fn purchase_block(ticket: &Ticket, user: Option<&User>) -> Option<&'static str> {
    if ticket.is_removed() {
        Some("This ticket is no longer for sale.")
    } else if ticket.is_reserved() {
        Some("This ticket is reserved by another buyer, or already sold.")
    } else if user.is_some_and(|u| u.id == ticket.user_id) {
        Some("This is your ticket: you can't buy it yourself.")
    } else if user.is_none() {
        Some("Sign in to buy this ticket.")
    } else {
        None
    }
}

pub struct EditForm {
    title: String,
    price: String,
    details: DetailsFields,
    errors: FormErrors,
}

#[derive(Template, WebTemplate)]
#[template(path = "ticket.html")]
pub struct TicketPage {
    layout: Layout,
    id: String,
    title: String,
    price: String,
    event: EventView,
    reserved: bool,
    /// Taken off sale by its seller.
    removed: bool,
    own: bool,
    signed_in: bool,
    /// Signed in and not the seller: the live script enables the Purchase button when the
    /// ticket is free again.
    can_buy: bool,
    signin_href: String,
    purchase_block: Option<&'static str>,
    purchase_error: Option<String>,
    edit: Option<EditForm>,
}

impl TicketPage {
    fn new(ticket: Ticket, user: Option<User>) -> Self {
        let own = user.as_ref().is_some_and(|u| u.id == ticket.user_id);
        let edit = (own && !ticket.is_reserved() && !ticket.is_removed()).then(|| EditForm {
            title: ticket.title.clone(),
            price: format!("{:.2}", ticket.price),
            details: DetailsFields::of(&ticket),
            errors: FormErrors::default(),
        });
        Self {
            purchase_block: purchase_block(&ticket, user.as_ref()),
            signin_href: format!(
                "/auth/signin?next={}",
                encode(&format!("/tickets/{}", ticket.id))
            ),
            reserved: ticket.is_reserved(),
            removed: ticket.is_removed(),
            event: EventView::new(&ticket.details),
            signed_in: user.is_some(),
            can_buy: user.is_some() && !own,
            own,
            id: ticket.id,
            price: money(ticket.price),
            layout: Layout {
                live_ticket: true,
                ..Layout::new(ticket.title.clone(), user)
            },
            title: ticket.title,
            purchase_error: None,
            edit,
        }
    }
}

/// `GET /tickets/:id`
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<TicketPage, PageError> {
    let id = valid_id(&id)?;
    let ticket = state.backend.get_ticket(id).await?.body;
    Ok(TicketPage::new(ticket, visitor.user))
}

/// `POST /tickets/:id/edit`: the owner's changes, then the ticket again.
pub async fn update(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    HtmlForm(form): HtmlForm<TicketForm>,
) -> Result<Response, PageError> {
    let id = valid_id(&id)?;
    let user = visitor.require(&format!("/tickets/{id}"))?;
    let mut errors = FormErrors::default();
    let details = form.details.input(&mut errors);
    let (status, errors) = match price_value(&form.price) {
        Ok(price) if errors.is_empty() => {
            match state
                .backend
                .update_ticket(&visitor.session, id, form.title.trim(), &price, &details)
                .await
            {
                Ok(_) => return Ok(Redirect::to(&format!("/tickets/{id}")).into_response()),
                Err(err) => {
                    let (status, errors) = refusal(err)?;
                    (status, FormErrors::from_service(&errors, FIELDS, None))
                }
            }
        }
        result => {
            if let Err(message) = result {
                errors.add_field("price", message);
            }
            (StatusCode::BAD_REQUEST, errors)
        }
    };
    // Shown again with what was typed, on the ticket as it is now.
    let ticket = state.backend.get_ticket(id).await?.body;
    let mut page = TicketPage::new(ticket, Some(user));
    match &mut page.edit {
        Some(edit) => {
            edit.title = form.title;
            edit.price = form.price;
            edit.details = form.details;
            edit.errors = errors;
        }
        // Reserved meanwhile, or not theirs: the reason goes where the form was.
        None => page.purchase_error = errors.general().first().cloned(),
    }
    Ok((status, page).into_response())
}

/// `POST /tickets/:id/purchase`: reserves the ticket and opens the order.
pub async fn purchase(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = valid_id(&id)?;
    let user = visitor.require(&format!("/tickets/{id}"))?;
    match state.backend.create_order(&visitor.session, id).await {
        Ok(reply) => {
            let order = reply.body;
            tracing::info!(order.id = %order.id, ticket.id = id, "ticket reserved through the client");
            Ok(Redirect::to(&format!("/orders/{}", order.id)).into_response())
        }
        Err(err) => {
            let (status, errors) = match err {
                // Orders learns of a new ticket through an event: a moment after listing,
                // it may not know it yet.
                BackendError::Rejected {
                    status: StatusCode::NOT_FOUND,
                    ..
                } => (
                    StatusCode::CONFLICT,
                    vec![ErrorItem::message(
                        "This ticket can't be bought just yet. Please try again in a moment.",
                    )],
                ),
                err => refusal(err)?,
            };
            let ticket = state.backend.get_ticket(id).await?.body;
            let mut page = TicketPage::new(ticket, Some(user));
            page.purchase_error = Some(
                errors
                    .into_iter()
                    .map(|e| e.message)
                    .next()
                    .unwrap_or_else(|| "This ticket can't be bought right now.".into()),
            );
            Ok((status, page).into_response())
        }
    }
}
