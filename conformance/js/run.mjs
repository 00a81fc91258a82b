#!/usr/bin/env node
// A second, independent relying party for Tessera's conformance runner: panva's
// openid-client (an OpenID Certified RP library) drives the Basic OP happy paths against a
// live issuer. It signs in through the hosted HTTP form itself (fetch with manual redirects
// and its own cookie jar), as a browser would.
//
//   node conformance/js/run.mjs --issuer URL --client-id ID --client-secret SECRET \
//        --email EMAIL --password PASSWORD [--redirect-uri URI] [--json]
//
// Every option can also come from the environment: TESSERA_CONFORMANCE_ISSUER,
// _CLIENT_ID, _CLIENT_SECRET, _EMAIL, _PASSWORD, _REDIRECT_URI. For a self-signed
// certificate, set NODE_EXTRA_CA_CERTS to its PEM file. Prints one line per module (or one
// JSON object per line with --json) and exits 1 if any module failed.

import * as client from 'openid-client'

const PLAN = 'openid-client (js)'

function options() {
  const args = process.argv.slice(2)
  const env = (name) => process.env[`TESSERA_CONFORMANCE_${name}`]
  const out = {
    issuer: env('ISSUER'),
    clientId: env('CLIENT_ID'),
    clientSecret: env('CLIENT_SECRET'),
    email: env('EMAIL'),
    password: env('PASSWORD'),
    redirectUri: env('REDIRECT_URI') ?? 'https://rp.conformance.test/test/a/tessera/callback',
    json: false,
  }
  const names = {
    '--issuer': 'issuer',
    '--client-id': 'clientId',
    '--client-secret': 'clientSecret',
    '--email': 'email',
    '--password': 'password',
    '--redirect-uri': 'redirectUri',
  }
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--json') {
      out.json = true
    } else if (names[args[i]] && i + 1 < args.length) {
      out[names[args[i]]] = args[++i]
    } else {
      console.error(`unknown or incomplete option ${args[i]}`)
      process.exit(2)
    }
  }
  for (const k of ['issuer', 'clientId', 'clientSecret', 'email', 'password']) {
    if (!out[k]) {
      console.error(`missing --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`)
      process.exit(2)
    }
  }
  return out
}

// ------------------------------------------------------------------ the browser

/** A browser over fetch: cookies for the OP, one redirect at a time, the person's actions. */
class Browser {
  constructor(issuer, email, password) {
    this.origin = new URL(issuer).origin
    this.email = email
    this.password = password
    this.jar = new Map()
  }

  cookieHeader() {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq < 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attrs.some((a) => /^\s*max-age=(0|-)/i.test(a))
      if (expired || value === '') this.jar.delete(name)
      else this.jar.set(name, value)
    }
  }

  /**
   * Follows the authorization URL until the browser is sent to the client. Returns
   * { callback: URL, loginPages } or throws with the page the OP showed instead.
   * With interact=false, any page the OP shows ends the navigation.
   */
  async authorize(url, { interact = true } = {}) {
    let method = 'GET'
    let body
    let loginPages = 0
    for (let hop = 0; hop < 25; hop++) {
      if (new URL(url).origin !== this.origin) {
        return { callback: new URL(url), loginPages }
      }
      const headers = {}
      const cookies = this.cookieHeader()
      if (cookies) headers.cookie = cookies
      if (body) headers['content-type'] = 'application/x-www-form-urlencoded'
      const response = await fetch(url, { method, headers, body, redirect: 'manual' })
      this.store(response)
      if (response.status >= 300 && response.status < 400) {
        url = new URL(response.headers.get('location'), url).href
        if (![307, 308].includes(response.status)) {
          method = 'GET'
          body = undefined
        }
        continue
      }
      const page = await response.text()
      const forms = parseForms(page)
      const loginForm = forms.find((f) => new URL(f.action, url).pathname === '/login')
      const consentForm = forms.find((f) => new URL(f.action, url).pathname === '/consent')
      const selectForm = forms.find((f) => new URL(f.action, url).pathname === '/select-account')
      let form
      let fill
      if (interact && response.status === 200 && loginForm && loginPages < 2) {
        loginPages++
        form = loginForm
        fill = { email: this.email, password: this.password }
      } else if (interact && response.status === 200 && consentForm) {
        form = consentForm
        fill = { decision: 'allow' }
      } else if (interact && response.status === 200 && selectForm) {
        form = selectForm
        fill = { choice: 'current' }
      } else {
        const title = (page.match(/<title>([^<]*)<\/title>/) || [])[1] || ''
        const alert = (page.match(/role="alert"[^>]*>([^<]*)</) || [])[1] || ''
        throw new Error(`the OP showed a page (HTTP ${response.status}) instead of returning to the client: ${title} ${alert}`.trim())
      }
      const fields = new URLSearchParams()
      for (const input of form.inputs) if (input.type === 'hidden') fields.append(input.name, input.value)
      for (const [k, v] of Object.entries(fill)) fields.append(k, v)
      method = form.method.toUpperCase()
      url = new URL(form.action, url).href
      body = fields.toString()
    }
    throw new Error('more than 25 navigations without reaching the client')
  }
}

function unescapeHtml(s) {
  return s
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(parseInt(d, 10)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
}

function attributes(tag) {
  const attrs = {}
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)\s*=\s*("([^"]*)"|'([^']*)')/g)) {
    attrs[m[1].toLowerCase()] = unescapeHtml(m[3] ?? m[4] ?? '')
  }
  return attrs
}

function parseForms(html) {
  const forms = []
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attributes(m[1])
    const inputs = []
    for (const i of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const ia = attributes(i[1])
      if (ia.name) inputs.push({ type: (ia.type || 'text').toLowerCase(), name: ia.name, value: ia.value ?? '' })
    }
    forms.push({ method: a.method || 'get', action: a.action || '', inputs })
  }
  return forms
}

// ------------------------------------------------------------------ the modules

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function assert(condition, message) {
  if (!condition) throw new Error(message)
}

async function discover(o) {
  const execute = [client.enableNonRepudiationChecks]
  if (new URL(o.issuer).protocol === 'http:') execute.push(client.allowInsecureRequests)
  // Discovery checks that the document's issuer is exactly the issuer URL.
  return client.discovery(
    new URL(o.issuer),
    o.clientId,
    { redirect_uris: [o.redirectUri], response_types: ['code'] },
    client.ClientSecretBasic(o.clientSecret),
    { execute },
  )
}

/** One authorization with PKCE, state and nonce; the code grant validates the response. */
async function login(config, browser, o, extra = {}, { interact = true, maxAge } = {}) {
  const codeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const params = {
    redirect_uri: o.redirectUri,
    scope: 'openid email profile',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  }
  const url = client.buildAuthorizationUrl(config, params)
  const { callback, loginPages } = await browser.authorize(url.href, { interact })
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    ...(maxAge !== undefined ? { maxAge } : {}),
  })
  const claims = tokens.claims()
  assert(claims, 'no ID token in the token response')
  return { tokens, claims, loginPages }
}

const modules = {
  // Discovery, code flow with PKCE, ID token validated (iss, aud, exp, iat, nonce, signature
  // against the JWKS with non-repudiation checks on), RFC 9207 iss in the response.
  async 'basic-happy-path'(o) {
    const config = await discover(o)
    const browser = new Browser(o.issuer, o.email, o.password)
    const { tokens, claims, loginPages } = await login(config, browser, o)
    assert(loginPages === 1, `expected one sign-in page, saw ${loginPages}`)
    assert(typeof claims.sub === 'string' && claims.sub.length > 0, 'sub missing')
    assert(tokens.token_type.toLowerCase() === 'bearer', `token_type ${tokens.token_type}`)
    assert(typeof tokens.expires_in === 'number' && tokens.expires_in > 0, 'expires_in missing')
    return []
  },

  async 'userinfo'(o) {
    const config = await discover(o)
    const browser = new Browser(o.issuer, o.email, o.password)
    const { tokens, claims } = await login(config, browser, o)
    // fetchUserInfo checks that userinfo's sub is the ID token's sub.
    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
    assert(info.email === o.email.toLowerCase() || info.email === o.email, `userinfo email ${info.email}`)
    assert(typeof info.email_verified === 'boolean', 'email_verified missing')
    return [`userinfo claims: ${Object.keys(info).sort().join(', ')}`]
  },

  // Refresh with offline_access (prompt=consent, as OIDC Core §11 asks): the new ID token
  // keeps iss, sub, aud and auth_time and has a new iat (OIDC Core §12.2); the token rotates.
  async 'refresh-token'(o) {
    const config = await discover(o)
    const browser = new Browser(o.issuer, o.email, o.password)
    const first = await login(config, browser, o, { scope: 'openid offline_access', prompt: 'consent' })
    assert(first.tokens.refresh_token, 'no refresh_token issued for scope offline_access')
    await sleep(1000)
    const refreshed = await client.refreshTokenGrant(config, first.tokens.refresh_token)
    const second = refreshed.claims()
    assert(refreshed.access_token && refreshed.access_token !== first.tokens.access_token, 'no new access token')
    const notes = []
    if (second) {
      for (const c of ['iss', 'sub', 'aud', 'auth_time']) {
        assert(JSON.stringify(second[c]) === JSON.stringify(first.claims[c]), `${c} changed on refresh: ${first.claims[c]} → ${second[c]}`)
      }
      assert(second.iat > first.claims.iat, `iat did not advance (${first.claims.iat} → ${second.iat})`)
    } else {
      notes.push('refresh response had no ID token')
    }
    if (refreshed.refresh_token) {
      assert(refreshed.refresh_token !== first.tokens.refresh_token, 'the same refresh token came back')
      notes.push('refresh token rotated')
    }
    const info = await client.fetchUserInfo(config, refreshed.access_token, first.claims.sub)
    assert(info.sub === first.claims.sub, 'userinfo sub changed')
    // The rotated-out token must not work again (RFC 9700 §4.14.2).
    let reuseRejected = false
    try {
      await client.refreshTokenGrant(config, first.tokens.refresh_token)
    } catch (e) {
      reuseRejected = e?.error === 'invalid_grant'
    }
    assert(reuseRejected, 'the used refresh token was accepted again')
    if (refreshed.refresh_token) {
      let familyRevoked = false
      try {
        await client.refreshTokenGrant(config, refreshed.refresh_token)
      } catch (e) {
        familyRevoked = e?.error === 'invalid_grant'
      }
      notes.push(`replaying the old refresh token ${familyRevoked ? 'revoked' : 'did not revoke'} its successor`)
    }
    return notes
  },

  // prompt=login: the OP must show the sign-in page again and auth_time must advance.
  async 'prompt-login'(o) {
    const config = await discover(o)
    const browser = new Browser(o.issuer, o.email, o.password)
    const first = await login(config, browser, o)
    await sleep(1000)
    const second = await login(config, browser, o, { prompt: 'login' })
    assert(second.loginPages === 1, `prompt=login: expected the sign-in page, saw ${second.loginPages}`)
    assert(second.claims.auth_time > first.claims.auth_time, `auth_time did not advance (${first.claims.auth_time} → ${second.claims.auth_time})`)
    assert(second.claims.sub === first.claims.sub, 'sub changed')
    return ['the OP asked for the password again; auth_time advanced']
  },

  // max_age=1 after 2 s: sign in again, later auth_time; openid-client checks auth_time
  // against maxAge.
  async 'max-age-1'(o) {
    const config = await discover(o)
    const browser = new Browser(o.issuer, o.email, o.password)
    const first = await login(config, browser, o)
    await sleep(2000)
    const second = await login(config, browser, o, { max_age: '1' }, { maxAge: 1 })
    assert(second.loginPages === 1, `max_age=1: expected the sign-in page, saw ${second.loginPages}`)
    assert(second.claims.auth_time > first.claims.auth_time, `auth_time did not advance (${first.claims.auth_time} → ${second.claims.auth_time})`)
    return ['the OP asked for the password again; auth_time advanced']
  },

  // max_age=10000 right after a sign-in: no sign-in page, same auth_time.
  async 'max-age-10000'(o) {
    const config = await discover(o)
    const browser = new Browser(o.issuer, o.email, o.password)
    const first = await login(config, browser, o, { max_age: '15000' }, { maxAge: 15000 })
    const second = await login(config, browser, o, { max_age: '10000' }, { interact: false, maxAge: 10000 })
    assert(second.claims.auth_time === first.claims.auth_time, `auth_time changed (${first.claims.auth_time} → ${second.claims.auth_time})`)
    assert(second.claims.sub === first.claims.sub, 'sub changed')
    return []
  },

  // prompt=none with a session: silent success.
  async 'prompt-none-logged-in'(o) {
    const config = await discover(o)
    const browser = new Browser(o.issuer, o.email, o.password)
    const first = await login(config, browser, o)
    const second = await login(config, browser, o, { prompt: 'none' }, { interact: false })
    assert(second.claims.auth_time === first.claims.auth_time, 'auth_time changed')
    return []
  },

  // prompt=none without a session: openid-client surfaces the login_required error.
  async 'prompt-none-not-logged-in'(o) {
    const config = await discover(o)
    const browser = new Browser(o.issuer, o.email, o.password)
    const state = client.randomState()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: o.redirectUri,
      scope: 'openid',
      state,
      nonce: client.randomNonce(),
      prompt: 'none',
    })
    const { callback } = await browser.authorize(url.href, { interact: false })
    try {
      await client.authorizationCodeGrant(config, callback, { expectedState: state })
    } catch (e) {
      const code = e?.error ?? e?.cause?.error
      assert(['login_required', 'interaction_required', 'consent_required', 'account_selection_required'].includes(code), `unexpected error ${code}: ${e.message}`)
      return [`error=${code}`]
    }
    throw new Error('prompt=none without a session returned a code')
  },
}

function describe(e) {
  let text = e?.message ?? String(e)
  if (e?.error) text += ` (error=${e.error}${e.error_description ? `: ${e.error_description}` : ''})`
  if (e?.cause && e.cause !== e && !(e.cause instanceof Response)) {
    text += ` [cause: ${e.cause?.message ?? JSON.stringify(e.cause)}]`
  }
  return text
}

async function main() {
  const o = options()
  let failed = 0
  for (const [name, run] of Object.entries(modules)) {
    const started = Date.now()
    let result
    try {
      const notes = await run(o)
      result = { plan: PLAN, module: name, result: 'PASSED', reasons: [], notes }
    } catch (e) {
      failed++
      result = { plan: PLAN, module: name, result: 'FAILED', reasons: [describe(e)], notes: [] }
    }
    result.seconds = (Date.now() - started) / 1000
    if (o.json) {
      console.log(JSON.stringify(result))
    } else {
      console.log(`${PLAN}  ${name.padEnd(26)}  ${result.result}`)
      for (const r of result.reasons) console.log(`    failed: ${r}`)
      for (const n of result.notes) console.log(`    note: ${n}`)
    }
  }
  if (!o.json) {
    const total = Object.keys(modules).length
    console.log(`openid-client: ${total - failed} passed, ${failed} failed`)
  }
  process.exit(failed ? 1 : 0)
}

main().catch((e) => {
  console.error(e)
  process.exit(2)
})
