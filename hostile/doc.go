// Package hostile holds no code: its tests turn every case of the hostile-input catalogue
// (PUB-01 to PUB-33) into an attack on a real Latchkey (auth, proxy and a real SQLite file behind
// a real HTTP server on 127.0.0.1, built by internal/lktest) with the catalogue's topology:
// public_url https://auth.example.com, cookie_domain example.com, grafana.example.com → passkey,
// admin.example.com → group admins, public.example.com ^/public/ → bypass, default deny.
//
// A refused request is checked the same way everywhere (reject in env_test.go): the status, a
// short JSON error, no session cookie, the users, credentials (sign_count included), sessions,
// invites, recovery_codes and api_tokens tables byte-identical before and after, an answer within
// 2 s, no "panic" in the log, and /.latchkey/healthz still answering.
//
// Where each case is covered:
//
//	PUB-01 forwarded headers from an untrusted peer   proxy/forward_test.go TestPUB01ForwardedHeadersFromUntrustedPeer
//	PUB-02 missing or malformed target                proxy/forward_test.go TestPUB02MissingOrMalformedTarget
//	PUB-03 ambiguous forwarding headers               proxy/forward_test.go TestPUB03AmbiguousForwardingHeaders
//	PUB-04 identity header injection (reverse proxy)  proxy/reverse_test.go TestPUB04IdentityHeaderInjection
//	PUB-05 host canonicalisation                      proxy/forward_test.go TestPUB05HostCanonicalizationHTTP
//	PUB-06 path rules, query, fragment, dot segments  proxy/forward_test.go TestPUB06PathRulesHTTP
//	PUB-07 client address spoofing                    proxy/forward_test.go TestPUB07ClientAddressSpoofingHTTP
//	PUB-08 slash, backslash, encoded redirects        redirect_test.go TestRedirectSinks/PUB-08/* (login page, login/finish, logout)
//	PUB-09 scheme tricks, control characters          redirect_test.go TestRedirectSinks/PUB-09/*
//	PUB-10 userinfo, suffix, prefix hosts             redirect_test.go TestRedirectSinks/PUB-10/*
//	PUB-11 cookie attributes and fixation             cookie_test.go TestCookieAttributesAndFixation
//	PUB-12 tampered, garbage, oversized cookies       cookie_test.go TestTamperedCookies; auth/fuzz_test.go FuzzCookieDecode
//	PUB-13 expiry (lifetime, inactivity, MaxAge)      cookie_test.go TestExpiry
//	PUB-14 replay after logout and revocation         cookie_test.go TestReplayAfterLogoutAndRevocation
//	PUB-15 cookies from elsewhere                     cookie_test.go TestCookiesFromElsewhere; (c) domains_test.go TestDomainsCookieBoundToItsDomain
//	PUB-16 keys at rest                               cookie_test.go TestKeysAtRest
//	PUB-17 CSRF on state-changing endpoints           csrf_test.go TestCSRF
//	PUB-18 replayed assertion                         webauthn_test.go TestReplayedAssertion
//	PUB-19 assertion for another relying party        webauthn_test.go TestAssertionForAnotherRelyingParty
//	PUB-20 challenge from another browser             webauthn_test.go TestChallengeFromAnotherBrowser
//	PUB-21 expired challenge                          webauthn_test.go TestExpiredChallenge
//	PUB-22 wrong ceremony type and flags              webauthn_test.go TestWrongCeremonyTypeAndFlags
//	PUB-23 sign-counter regression                    webauthn_test.go TestSignCounterRegression
//	PUB-24 unknown, removed or disabled               webauthn_test.go TestUnknownRemovedDisabled
//	PUB-25 oversized and garbage bodies               webauthn_test.go TestOversizedAndGarbageBodies; auth/fuzz_test.go FuzzLoginFinish, FuzzRegisterFinish
//	PUB-26 registering to someone else's account      enrol_test.go TestRegisterToAnotherAccount
//	PUB-27 enrolment after bootstrap, invite reuse    enrol_test.go TestEnrolmentAfterBootstrapAndInviteReuse; auth/recovery_test.go TestMagicLink (enrol token as recovery link)
//	PUB-28 recovery-code brute force and reuse        auth/recovery_test.go TestRecoveryCodeBruteForce
//	PUB-29 e-mail magic link                          auth/recovery_test.go TestMagicLink, TestMagicLinkNoOracle
//	PUB-30 rate limits and bounded state              abuse_test.go TestRateLimitsAndBoundedState
//	PUB-31 concurrency (run with -race)               abuse_test.go TestConcurrency (a, b, c); auth/recovery_test.go TestRecoveryCodeRace (b)
//	PUB-32 database files and logs                    abuse_test.go TestSecretsNeverLogged, TestDatabaseFileModes
//	PUB-33 slowloris and oversized headers            cmd/latchkey/hostile_limits_test.go TestSlowlorisAndOversizedHeaders
//
// Cases beyond the catalogue are written in CASES.md; where each is covered:
//
//	Host and path identity
//	HOST-01 request-line authority versus Host        proxy/identity_integration_test.go TestHostPathIdentityNginx, TestHostPathIdentityCaddy, TestHostPathIdentityReverseProxy
//	HOST-02 a port the client writes                  the same three; proxy/forward_headers_test.go TestForwardedPortIsWhatTheProxyRoutedOn; proxy/identity_integration_test.go TestReverseProxyPortRoutes; identity_test.go TestHostSpellingsAndPorts
//	HOST-03 other spellings of a host                 the same three; identity_test.go TestHostSpellingsAndPorts; proxy/identity_fuzz_test.go FuzzEquivalentFormsSameRule
//	HOST-04 a default server serves any host          proxy/identity_integration_test.go TestNginxDefaultServerJudgedAsItsName
//	PATH-01 a directory and every way of writing it   the same three; identity_test.go TestDirectoryRuleCoversEverySpelling; proxy/path_test.go TestNormalizePath; FuzzEquivalentFormsSameRule
//	PATH-02 what the upstream receives is judged      the same three (every served row checks the upstream's URI)
//	DBG-01 request debugger behind a portal proxy     identity_test.go TestDebuggerBehindPortalProxy; proxy/debug_test.go TestDebugRequestFromTrustedProxy, TestDebugRequestAccess
//	TOK-01 Latchkey tokens reaching the application   proxy/token_integration_test.go TestTokensNeverReachTheAppNginx, ...Caddy, ...ReverseProxy
//	HDR-01 unusable forwarded headers name the header proxy/forward_headers_test.go TestBadForwardedHeadersNameTheHeader, TestForwardedProtoWebSocket
//
//	Account actions and revocation
//	ACC-01 stolen cookie, account-changing actions    account_test.go TestStolenCookieCannotTakeOverAccount; auth/stepup_account_test.go TestAccountActionsNeedStepUp; e2e TestAccountInlineStepUp
//	ACC-02 recovery session scope                     auth/stepup_account_test.go TestRecoverySessionEnrolsWithoutStepUp; auth/account_test.go TestAccountAPINeedsFullSession
//	ACC-03 recovery mail redirected                   auth/stepup_account_test.go TestEmailChange
//	ACC-04 disabled is disabled for good              auth/revoke_test.go TestDisableRevokesForGood
//	ACC-05 sign out everywhere leaves tokens behind   auth/revoke_test.go TestSignOutEverywhere
//	ACC-06 control characters in account fields      cmd/latchkey/account_parity_test.go TestCLIAndConsoleValidateAlike; account/validate_test.go TestValidation
//	ACC-07 who did it (one audit vocabulary)          cmd/latchkey/account_parity_test.go TestCLIAndConsoleAuditAlike
//
//	Login answers
//	LOGIN-01 revision of PUB-24 (unknown credential)  webauthn_test.go TestUnknownRemovedDisabled
//
//	Several domains
//	DOM-01 a cookie of one domain on another          domains_test.go TestDomainsCookieBoundToItsDomain, TestDomainsOnePasskeyBothDomains (rd); e2e TestSeveralDomainsBrowser
//	DOM-02 the continue step hands over one session   domains_test.go TestDomainsContinue; e2e TestSeveralDomainsBrowser
//	DOM-03 continue token replayed                    domains_test.go TestDomainsContinueAttacks/DOM-03_replay
//	DOM-04 continue token expired                     domains_test.go TestDomainsContinueAttacks/DOM-04_expired
//	DOM-05 another user's token or session            domains_test.go TestDomainsContinueAttacks/DOM-05_another_user
//	DOM-06 unconfigured or wrong domain               domains_test.go TestDomainsContinueAttacks/DOM-06_unconfigured_or_wrong_domain
//	DOM-07 the session that asked has ended           domains_test.go TestDomainsContinueAttacks/DOM-07_the_session_that_asked_has_ended
//	LANG-01 hostile lang parameter                    language_test.go TestLanguageHostile/LANG-01
//	LANG-02 hostile language cookie                   language_test.go TestLanguageHostile/LANG-02
//	LANG-03 hostile Accept-Language                   language_test.go TestLanguageHostile/LANG-03
//	LANG-04 open redirect through the switcher        language_test.go TestLanguageHostile/LANG-04
//	LANG-05 markup through a translation              language_test.go TestLanguageHostile/LANG-05
//
// Beyond the catalogue: headers_test.go TestSecurityHeadersOnEveryRoute requests every route
// registered in auth.Routes() (read from the auth sources, so new routes are covered without
// editing the test), signed out and signed in, through the whole handler and through
// auth.Routes() alone, and checks CSP (no inline or eval script, frame-ancestors 'none'),
// Referrer-Policy no-referrer, nosniff and Cache-Control no-store. Forwarded-header parsing is
// fuzzed by proxy/forward_fuzz_test.go FuzzForwardHeaders, language choice by auth/i18n_test.go
// FuzzLanguagePick.
package hostile
