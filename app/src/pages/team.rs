//! `/settings/team`: the partner's users and their roles; admins add people.

use leptos::prelude::*;

use crate::api::{AddTeamMember, list_team};
use crate::components::{ErrorAlert, RoleSelect, SignedIn, format_time, machine_time};
use crate::domain::TeamMember;

/// The team, and a form to add someone with a role; their first password is shown once.
#[component]
pub fn TeamPage() -> impl IntoView {
    let add = ServerAction::<AddTeamMember>::new();
    let team = Resource::new(move || add.version().get(), |_| list_team());
    let add_error = move || add.value().get().and_then(Result::err).map(|e| e.to_string());
    view! {
        <SignedIn title="Team">
            <h1>"Team"</h1>
            <p class="lead">
                "Admins change webhooks, API keys and the team; viewers read webhooks and delivery logs."
            </p>
            <ActionForm action=add attr:class="card inline-form" attr:aria-label="Add a user">
                <div class="field">
                    <label for="member-email">"Email"</label>
                    <input id="member-email" name="email" type="email" maxlength="254" required />
                </div>
                <RoleSelect id="member-role" label="Role" />
                <button type="submit" disabled=move || add.pending().get()>
                    "Add user"
                </button>
            </ActionForm>
            <ErrorAlert message=add_error />
            {move || {
                add.value()
                    .get()
                    .and_then(Result::ok)
                    .map(|added| {
                        view! {
                            <div class="notice card" role="status">
                                <p>
                                    <strong>{format!("{} can sign in now.", added.member.email)}</strong>
                                    " Give them this password; it is shown only this once."
                                </p>
                                <label for="new-password">"First password"</label>
                                <input
                                    id="new-password"
                                    class="secret"
                                    readonly
                                    value=added.password
                                    data-testid="new-password"
                                />
                            </div>
                        }
                    })
            }}
            <Transition fallback=|| view! { <p>"Loading the team…"</p> }>
                <ErrorBoundary fallback=crate::components::error_list>
                    {move || team.get().map(|answer| answer.map(|members| view! { <TeamTable members /> }))}
                </ErrorBoundary>
            </Transition>
        </SignedIn>
    }
}

#[component]
fn TeamTable(members: Vec<TeamMember>) -> impl IntoView {
    let rows = members
        .into_iter()
        .map(|m| {
            view! {
                <tr data-testid="team-row">
                    <td>{m.email}</td>
                    <td>{m.role.as_str()}</td>
                    <td>
                        <time datetime=machine_time(&m.created_at)>{format_time(&m.created_at)}</time>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list">
            <caption class="visually-hidden">"Your team"</caption>
            <thead>
                <tr>
                    <th scope="col">"Email"</th>
                    <th scope="col">"Role"</th>
                    <th scope="col">"Added"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
