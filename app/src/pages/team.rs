//! `/settings/team`: the partner's users and their roles. Admins add people (each gets a
//! one-time link to set their own password), change roles and remove people.

use leptos::prelude::*;

use crate::api::{AddTeamMember, RemoveTeamMember, SetTeamRole, current_user, list_team};
use crate::components::{CopyButton, ErrorAlert, RoleSelect, SignedIn, format_time, machine_time};
use crate::domain::{Role, TeamMember, UserId};

/// The team, and a form to add someone with a role; their one-time link is shown once.
#[component]
pub fn TeamPage() -> impl IntoView {
    let add = ServerAction::<AddTeamMember>::new();
    let remove = ServerAction::<RemoveTeamMember>::new();
    let set_role = ServerAction::<SetTeamRole>::new();
    let team =
        Resource::new(move || (add.version().get(), remove.version().get(), set_role.version().get()), |_| list_team());
    let me = Resource::new(|| (), |_| current_user());
    let add_error = move || add.value().get().and_then(Result::err).map(|e| e.to_string());
    let change_error = move || {
        remove
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| set_role.value().get().and_then(Result::err))
            .map(|e| e.to_string())
    };
    view! {
        <SignedIn title="Team">
            <h1>"Team"</h1>
            <p class="lead">
                "Admins change webhooks, API keys and the team; viewers read webhooks and delivery logs. A team always keeps at least one admin."
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
                            <div class="notice card stack" role="status">
                                <p>
                                    <strong>{format!("{} is added.", added.member.email)}</strong>
                                    " Send them this link: they choose their own password with it and are signed in. It works once, until "
                                    {format_time(&added.link.expires_at)}
                                    ", and is shown only this once."
                                </p>
                                <label for="password-link">"One-time link"</label>
                                <div class="with-button">
                                    <input
                                        id="password-link"
                                        class="secret"
                                        readonly
                                        value=added.link.url.clone()
                                        data-testid="password-link"
                                    />
                                    <CopyButton text=added.link.url label="Copy the one-time link".into() testid="copy-password-link".into() />
                                </div>
                            </div>
                        }
                    })
            }}
            <ErrorAlert message=change_error />
            <Transition fallback=|| view! { <p>"Loading the team…"</p> }>
                <ErrorBoundary fallback=crate::components::error_list>
                    {move || {
                        let me = me.get().and_then(Result::ok).flatten().map(|u| u.user_id);
                        team.get()
                            .map(|answer| answer.map(|members| view! { <TeamTable members me remove set_role /> }))
                    }}
                </ErrorBoundary>
            </Transition>
        </SignedIn>
    }
}

#[component]
fn TeamTable(
    members: Vec<TeamMember>,
    me: Option<UserId>,
    remove: ServerAction<RemoveTeamMember>,
    set_role: ServerAction<SetTeamRole>,
) -> impl IntoView {
    let rows = members
        .into_iter()
        .map(|m| {
            let you = me.as_ref() == Some(&m.id);
            let other_role = match m.role {
                Role::Admin => Role::Viewer,
                Role::Viewer => Role::Admin,
            };
            let (role_id, remove_id) = (m.id.to_string(), m.id.to_string());
            let role_label = format!("Make {} {}", other_role.as_str(), m.email);
            let remove_label = format!("Remove {}", m.email);
            let confirm_label = format!("Yes, remove {}", m.email);
            let named = m.email.clone();
            view! {
                <tr data-testid="team-row">
                    <td data-label="Email">
                        {m.email.clone()} {you.then(|| view! { <span class="hint">" (you)"</span> })}
                    </td>
                    <td data-label="Role">{m.role.as_str()}</td>
                    <td data-label="Added">
                        <time datetime=machine_time(&m.created_at)>{format_time(&m.created_at)}</time>
                    </td>
                    <td class="row-actions">
                        <ActionForm action=set_role>
                            <input type="hidden" name="id" value=role_id />
                            <input type="hidden" name="role" value=other_role.as_str() />
                            <button
                                type="submit"
                                class="secondary"
                                aria-label=role_label
                            >
                                {format!("Make {}", other_role.as_str())}
                            </button>
                        </ActionForm>
                        <details class="danger-zone">
                            <summary class="button danger" aria-label=remove_label>
                                "Remove"
                            </summary>
                            <p>
                                "Remove " <strong>{named}</strong>
                                "? They are signed out at once and can't sign in again. API keys they made stay: the API keys page says who made each, to revoke theirs (look in both Production and Sandbox)."
                            </p>
                            <ActionForm action=remove>
                                <input type="hidden" name="id" value=remove_id />
                                <button type="submit" class="danger" aria-label=confirm_label>
                                    "Yes, remove"
                                </button>
                            </ActionForm>
                        </details>
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
                    <th scope="col">
                        <span class="visually-hidden">"Actions"</span>
                    </th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
