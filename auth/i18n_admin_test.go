package auth_test

import (
	"html"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// TestAdminInFrench: the admin console follows the language switcher (issue 21): the users list
// with its counts in plural forms, a user's page, the audit log with its event names, and the
// API's refusals, with the account operations' field and message both translated.
func TestAdminInFrench(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny"})
	root := enrolled(t, env, "root", lktest.NewPasskey(), "admins")
	enrolled(t, env, "alice", lktest.NewPasskey(), "staff")
	alice, err := env.Store.UserByName(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	page := func(path string) string {
		t.Helper()
		r := root.Get(path)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, r.StatusCode)
		}
		// Apostrophes and quotes come escaped; compare the text a person reads.
		return html.UnescapeString(string(r.Body))
	}
	has := func(where, body string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", where, w)
			}
		}
	}

	// The switcher's choice is remembered for the pages and the API answers after it.
	page("/.latchkey/admin?lang=fr")
	var carol struct {
		ExpiresIn string `json:"expires_in"`
	}
	if r := root.PostJSON("/.latchkey/api/admin/users", map[string]any{"name": "carol"}); r.StatusCode != http.StatusCreated || r.JSON(&carol) != nil {
		t.Fatalf("add carol: %d %s", r.StatusCode, r.Body)
	}
	if carol.ExpiresIn != "7 jours" {
		t.Errorf("the enrolment link works for %q, want 7 jours", carol.ExpiresIn)
	}
	users := page("/.latchkey/admin")
	has("the users page", users, `<html lang="fr">`, "<title>Administration · Utilisateurs · Latchkey</title>",
		"Tous les utilisateurs", "Ajouter un utilisateur", `data-label="Dernière connexion"`,
		"1 clé d'accès", "0 clé d'accès", "non inscrit", "actif", "les administrateurs sont les membres du groupe <strong>admins</strong>.")
	// The page's text, after the script messages (whose keys are English) in the head.
	if _, text, _ := strings.Cut(users, "</head>"); strings.Contains(text, "All users") || strings.Contains(text, "passkeys") {
		t.Error("the users page keeps English words")
	}

	user := page("/.latchkey/admin/users/" + alice.ID)
	has("the user page", user, "<title>Administration · alice · Latchkey</title>", "Nouveau lien d'inscription",
		"Supprimer l'utilisateur", "<h2>Clés d'accès</h2>", "<h2>Sessions</h2>", "Se déconnecter partout", "Aucun jeton d'API.",
		"dernière utilisation :", "Journal d'audit de alice")

	if r := root.PostJSON("/.latchkey/api/admin/users/"+alice.ID+"/disable", map[string]any{}); r.StatusCode != http.StatusOK {
		t.Fatalf("disable alice: %d %s", r.StatusCode, r.Body)
	} else {
		var out struct{ Message string }
		if r.JSON(&out) != nil || out.Message != "Utilisateur alice désactivé. 1 session terminée. 0 jeton d'API révoqué." {
			t.Errorf("disable answered %q", out.Message)
		}
	}

	audit := page("/.latchkey/admin/audit")
	has("the audit page", audit, "<h1>Journal d'audit</h1>", "Tous les événements", `<th scope="col">Auteur</th>`,
		`title="user_disabled">Utilisateur désactivé</td>`, `<option value="user_added">Utilisateur ajouté</option>`, "Page 1")
	// The event types are in French alphabetical order: "État…" sorts with the E's, before
	// "Identifiants…", not after every unaccented name.
	c, e, i := strings.Index(audit, ">Clé d'accès ajoutée<"), strings.Index(audit, ">État de sauvegarde de la clé d'accès modifié<"),
		strings.Index(audit, ">Identifiants de l'application refusés<")
	if c < 0 || e < c || i < e {
		t.Errorf("event names out of French order: Clé… at %d, État… at %d, Identifiants… at %d", c, e, i)
	}
	if none := page("/.latchkey/admin/audit?user=nobody"); !strings.Contains(none, "Aucun événement ne correspond.") {
		t.Error("the empty audit page is not in French")
	}

	// Refusals: the account operations' field and message, and the console's own.
	for _, c := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"name": "a b"}, `nom d'utilisateur : "a b" : utilisez de 1 à 64 lettres, chiffres et . _ @ -`},
		{map[string]any{"name": "dave", "display_name": strings.Repeat("x", 201)}, "nom affiché : 200 caractères au maximum"},
		{map[string]any{"name": "dave", "email": "no-at"}, `e-mail : "no-at" n'est pas une adresse comme marie@example.com`},
		{map[string]any{"name": "carol"}, "un utilisateur porte déjà ce nom"},
	} {
		r := root.PostJSON("/.latchkey/api/admin/users", c.body)
		var e struct{ Error string }
		if r.StatusCode/100 != 4 || r.JSON(&e) != nil || e.Error != c.want {
			t.Errorf("%v: %d %s, want %q", c.body, r.StatusCode, r.Body, c.want)
		}
	}
	if r := root.PostJSON("/.latchkey/api/admin/users/nobody/invite", map[string]any{}); !strings.Contains(string(r.Body), "cet utilisateur n'existe pas") {
		t.Errorf("unknown user: %d %s", r.StatusCode, r.Body)
	}
}
