package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// step bounds one browser action; a flow that hangs (a ceremony waiting for a user that will
// never come) fails with a message instead of eating the whole test timeout.
const step = 15 * time.Second

// tabOptions choose how a tab looks at the pages.
type tabOptions struct {
	phone         bool // 390x844, mobile
	dark          bool // prefers-color-scheme: dark
	noJSONHelpers bool // delete the WebAuthn JSON helpers, so the page's manual base64url path runs
}

// tab is one page in its own browser context (its own cookies), with the WebAuthn domain on.
type tab struct {
	t    *testing.T
	ctx  context.Context
	dir  string // screenshots of this tab
	dark bool   // emulates prefers-color-scheme: dark
	mu   sync.Mutex
	errs []string // uncaught page exceptions
}

// Script run before every document of every tab: it sums the layout shifts that no input
// caused (the Cumulative Layout Shift of web-vitals), so tests can check that nothing jumps.
const clsScript = `window.__lkCLS = 0;
try { new PerformanceObserver(l => { for (const e of l.getEntries()) if (!e.hadRecentInput) window.__lkCLS += e.value; })
  .observe({type: "layout-shift", buffered: true}); } catch (e) {}`

// traceGetsScript wraps navigator.credentials.get so that a test can see which requests the
// page made (modal or conditional) and whether they are still pending.
const traceGetsScript = `window.__lkGets = [];
if (navigator.credentials && navigator.credentials.get) {
  const get = navigator.credentials.get.bind(navigator.credentials);
  navigator.credentials.get = function (opts) {
    const rec = { mediation: (opts && opts.mediation) || "optional", state: "pending" };
    window.__lkGets.push(rec);
    const p = get(opts);
    p.then(() => { rec.state = "resolved"; }, e => { rec.state = "rejected:" + (e && e.name); });
    return p;
  };
}`

// Deleting the helpers before the page script runs forces its fallback for browsers without
// PublicKeyCredential.parseCreationOptionsFromJSON and friends (Safari before 18, Firefox before 119).
const noJSONHelpersScript = `if (window.PublicKeyCredential) {
  delete PublicKeyCredential.parseCreationOptionsFromJSON;
  delete PublicKeyCredential.parseRequestOptionsFromJSON;
  delete PublicKeyCredential.prototype.toJSON;
}`

func newTab(t *testing.T, opts tabOptions) *tab {
	t.Helper()
	needBrowser(t)
	ctx, cancel := chromedp.NewContext(suite.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")
	tb := &tab{t: t, ctx: ctx, dir: filepath.Join(suite.shots, name)}
	if err := os.MkdirAll(tb.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		t.Fatalf("opening a tab: %v", err)
	}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			msg := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
			tb.mu.Lock()
			tb.errs = append(tb.errs, "uncaught exception in the page: "+msg)
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, e := range tb.errs {
			t.Error(e)
		}
	})
	if _, err := chromedp.Call(ctx, runtime.AddBinding, runtime.AddBindingParams{Name: "__lkNativeDialog"}); err != nil {
		t.Fatalf("adding the dialog recorder: %v", err)
	}
	calls := chromedp.Events(ctx, runtime.BindingCalled)
	go func() {
		for ev, err := range calls {
			if err != nil {
				return
			}
			if ev.Name != "__lkNativeDialog" {
				continue
			}
			tb.mu.Lock()
			tb.errs = append(tb.errs, "the page called window."+ev.Payload+" (use the in-page dialog)")
			tb.mu.Unlock()
		}
	}()
	scripts := []string{clsScript, traceGetsScript, nativeDialogScript}
	if opts.noJSONHelpers {
		scripts = append(scripts, noJSONHelpersScript)
	}
	for _, s := range scripts {
		if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: s}); err != nil {
			t.Fatalf("adding a page script: %v", err)
		}
	}
	if opts.phone {
		tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	}
	tb.dark = opts.dark
	tb.emulateMedia("")
	if _, err := chromedp.Call(ctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{EnableUI: new(false)}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	return tb
}

// authOptions describe a virtual authenticator: a platform authenticator with resident keys and
// user verification, like Touch ID or Windows Hello, unless a test changes it.
type authOptions struct {
	uvFails bool // IsUserVerified=false: user verification fails
	noTouch bool // AutomaticPresenceSimulation=false: requests wait for a touch (see setPresence)
}

// addAuthenticator plugs in a virtual authenticator. AutomaticPresenceSimulation must be on, or
// every ceremony waits for a touch that never comes.
func (tb *tab) addAuthenticator(o authOptions) cdpwebauthn.AuthenticatorID {
	tb.t.Helper()
	res, err := chromedp.Call(tb.ctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
		Options: &cdpwebauthn.VirtualAuthenticatorOptions{
			Protocol:                    cdpwebauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                cdpwebauthn.Ctap2versionCtap21,
			Transport:                   cdpwebauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              !o.uvFails,
			AutomaticPresenceSimulation: !o.noTouch,
		},
	})
	if err != nil {
		tb.t.Fatalf("adding a virtual authenticator: %v", err)
	}
	return res.AuthenticatorID
}

func (tb *tab) removeAuthenticator(id cdpwebauthn.AuthenticatorID) {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, cdpwebauthn.RemoveVirtualAuthenticator, cdpwebauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: id}); err != nil {
		tb.t.Fatalf("removing a virtual authenticator: %v", err)
	}
}

// credentials lists what an authenticator holds.
func (tb *tab) credentials(id cdpwebauthn.AuthenticatorID) []*cdpwebauthn.Credential {
	tb.t.Helper()
	res, err := chromedp.Call(tb.ctx, cdpwebauthn.GetCredentials, cdpwebauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		tb.t.Fatalf("listing credentials: %v", err)
	}
	return res.Credentials
}

// addCredentials copies passkeys into an authenticator, the way a synced passkey shows up on
// a second device; it lets a fresh browser context sign in with a passkey made in another.
func (tb *tab) addCredentials(id cdpwebauthn.AuthenticatorID, creds []*cdpwebauthn.Credential) {
	tb.t.Helper()
	for _, c := range creds {
		p := addCredentialParams{AuthenticatorID: id, Credential: portableCredential{
			CredentialID: c.CredentialID, IsResidentCredential: c.IsResidentCredential, RpID: c.RpID,
			PrivateKey: c.PrivateKey, UserHandle: c.UserHandle, SignCount: c.SignCount,
			BackupEligibility: c.BackupEligibility, BackupState: c.BackupState,
			UserName: c.UserName, UserDisplayName: c.UserDisplayName,
		}}
		if _, err := chromedp.Call(tb.ctx, addCredential, p); err != nil {
			tb.t.Fatalf("adding a credential: %v", err)
		}
	}
}

// addCredential is WebAuthn.addCredential with only the portable fields of a credential:
// cdproto always sends generateCmtgKeyOnNextOperation, and Chromium refuses any CMTG field
// for an authenticator without that extension ("CMTG is not supported by this authenticator").
var addCredential = cdp.Command[addCredentialParams, cdp.Empty]{Method: cdpwebauthn.CommandAddCredential}

type addCredentialParams struct {
	AuthenticatorID cdpwebauthn.AuthenticatorID `json:"authenticatorId"`
	Credential      portableCredential          `json:"credential"`
}

type portableCredential struct {
	CredentialID         []byte  `json:"credentialId"`
	IsResidentCredential bool    `json:"isResidentCredential"`
	RpID                 string  `json:"rpId,omitempty"`
	PrivateKey           []byte  `json:"privateKey"`
	UserHandle           []byte  `json:"userHandle,omitempty"`
	SignCount            float64 `json:"signCount"`
	BackupEligibility    bool    `json:"backupEligibility"`
	BackupState          bool    `json:"backupState"`
	UserName             string  `json:"userName,omitempty"`
	UserDisplayName      string  `json:"userDisplayName,omitempty"`
}

// do runs actions with a per-step time limit.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v (at %s)", err, tb.location())
	}
}

func (tb *tab) navigate(url string) { tb.t.Helper(); tb.do(chromedp.Navigate(url)) }

func (tb *tab) click(id string) {
	tb.t.Helper()
	tb.do(chromedp.WaitVisible(chromedp.ID(id)), chromedp.Click(chromedp.ID(id)))
}

// eval evaluates a JavaScript expression and decodes its JSON value into T.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, step)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluating %q: %v (at %s)", expr, err, tb.location())
	}
	return v
}

// location is the current URL, or a note why it is unknown (for failure messages).
func (tb *tab) location() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown location: " + err.Error()
	}
	return u
}

// waitFor polls a JavaScript condition until it holds, across navigations (an evaluation that
// fails because the page is being replaced is simply tried again).
func (tb *tab) waitFor(what, cond string) {
	tb.t.Helper()
	deadline := time.Now().Add(step)
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tb.shot("timeout")
			tb.t.Fatalf("waiting for %s: not true after %s (at %s; #status: %q; last error: %v)",
				what, step, tb.location(), tb.status(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitURL waits until the page's URL starts with prefix and the document has loaded.
func (tb *tab) waitURL(prefix string) {
	tb.t.Helper()
	b, _ := json.Marshal(prefix)
	tb.waitFor("URL "+prefix, fmt.Sprintf(`location.href.startsWith(%s) && document.readyState === "complete"`, b))
}

// getRequest is one navigator.credentials.get call the page made.
type getRequest struct {
	Mediation string `json:"mediation"` // conditional, or optional for the button's request
	State     string `json:"state"`     // pending, resolved or rejected:ErrorName
}

func (tb *tab) gets() []getRequest {
	tb.t.Helper()
	return eval[[]getRequest](tb, `window.__lkGets || []`)
}

// waitConditionalSettled waits until the page's conditional request has ended (the virtual
// authenticator answers one at once: it resolves when it holds a passkey, else it rejects).
func (tb *tab) waitConditionalSettled() {
	tb.t.Helper()
	tb.waitFor("the conditional request to settle", `(window.__lkGets || []).some(g => g.mediation === "conditional" && g.state !== "pending")`)
}

// nativeDialogScript replaces window.prompt, confirm and alert in every document of every tab
// with a recorder that reports each call to the test (through the __lkNativeDialog binding), which
// then fails: the pages use in-page dialogs only (issue 20).
const nativeDialogScript = `for (const name of ["prompt", "confirm", "alert"]) {
  window[name] = function () {
    try { window.__lkNativeDialog(name + ": " + String(arguments[0] || "")); } catch (e) {}
    return name === "confirm" ? false : null;
  };
}`

// status is the text of the page's #status line ("" when there is none).
func (tb *tab) status() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("status") || {}).textContent || ""`))
	return s
}

// waitStatus waits until a status line (#status, or the one next to an action) shows a message
// of the given kind (error or ok) and returns it.
func (tb *tab) waitStatus(kind string) string {
	tb.t.Helper()
	sel := `[...document.querySelectorAll(".status.` + kind + `")].filter(s => s.textContent.trim() !== "" && s.checkVisibility())`
	tb.waitFor("a status message ("+kind+")", sel+`.length > 0`)
	return eval[string](tb, sel+`.map(s => s.textContent.trim()).join(" | ")`)
}

// statusIn returns the message of the status line inside the element with this id.
func (tb *tab) statusIn(id string) string {
	tb.t.Helper()
	b, _ := json.Marshal(id)
	return strings.TrimSpace(eval[string](tb, fmt.Sprintf(`(() => { const e = document.getElementById(%s);
		const s = e && (e.matches(".status") ? e : e.querySelector(":scope > .status"));
		return s ? s.textContent : ""; })()`, b)))
}

// text returns the trimmed text content of the element with this id.
func (tb *tab) text(id string) string {
	tb.t.Helper()
	b, _ := json.Marshal(id)
	return strings.TrimSpace(eval[string](tb, fmt.Sprintf(`(document.getElementById(%s) || {}).textContent || ""`, b)))
}

// visible says whether the element with this id is rendered with a size.
func (tb *tab) visible(id string) bool {
	tb.t.Helper()
	b, _ := json.Marshal(id)
	return eval[bool](tb, fmt.Sprintf(`(() => { const e = document.getElementById(%s);
		return !!e && e.checkVisibility({visibilityProperty: true}) && e.getClientRects().length > 0; })()`, b))
}

// shotCount numbers the screenshots of each folder, across the tabs of one test.
var shotCount = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

func nextShot(dir string) int {
	shotCount.Lock()
	defer shotCount.Unlock()
	shotCount.n[dir]++
	return shotCount.n[dir]
}

// shot saves a PNG of the whole page as NN-name.png in the test's screenshot folder.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, step)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(tb.dir, fmt.Sprintf("%02d-%s.png", nextShot(tb.dir), name))
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		tb.t.Errorf("saving a screenshot: %v", err)
	}
}

// checkNoLayoutShift fails when the page moved by itself since it loaded (CLS above 0.02; the
// web-vitals "good" bound is 0.1).
func (tb *tab) checkNoLayoutShift(where string) {
	tb.t.Helper()
	if cls := eval[float64](tb, `window.__lkCLS || 0`); cls > 0.02 {
		tb.t.Errorf("%s: cumulative layout shift %.3f", where, cls)
	}
}

// emulateMedia sets the emulated media type ("" for the screen, "print") and keeps the tab's
// colour scheme.
func (tb *tab) emulateMedia(media string) {
	tb.t.Helper()
	p := emulation.SetEmulatedMediaParams{Media: media}
	if tb.dark {
		p.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}
	}
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, p); err != nil {
		tb.t.Fatalf("emulating media %q (dark %v): %v", media, tb.dark, err)
	}
}

// answerDialogs answers the page's in-page dialogs (dialog.js) as a person would: when one
// opens, it types answer into its field, if it has one, and presses the confirming button. It
// lasts until the next navigation. The pages never use window.prompt or confirm (see
// nativeDialogScript).
func (tb *tab) answerDialogs(answer string) {
	tb.t.Helper()
	b, _ := json.Marshal(answer)
	eval[bool](tb, fmt.Sprintf(`(() => {
		const answer = %s;
		const respond = () => {
			const d = document.getElementById("lk-dialog");
			if (!d || !d.open || d.dataset.answered) return;
			d.dataset.answered = "1";
			const input = document.getElementById("lk-dialog-input");
			if (!input.hidden) input.value = answer;
			document.getElementById("lk-dialog-ok").click();
		};
		new MutationObserver(() => {
			const d = document.getElementById("lk-dialog");
			if (d && !d.open) delete d.dataset.answered;
			respond();
		}).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["open"] });
		return true;
	})()`, b))
}

// dialogOpen waits for the page's in-page dialog to open and returns its title.
func (tb *tab) dialogOpen() string {
	tb.t.Helper()
	tb.waitFor("the in-page dialog", `(document.getElementById("lk-dialog") || {}).open === true`)
	return tb.text("lk-dialog-title")
}
