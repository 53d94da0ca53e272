/* The gateway's playground: GraphiQL (self-hosted UMD bundles) with ready examples and, in
 * sandbox mode only, a panel that logs a made-up user in and fills in the request headers.
 * Plain ES2017, no bundler, no JSX, no inline script: the page's CSP allows none. */
(function () {
  "use strict";

  var h = React.createElement;
  var mount = document.getElementById("graphiql");
  var endpoint = mount.getAttribute("data-endpoint");
  var sandboxBase = mount.getAttribute("data-sandbox"); // only in sandbox mode
  var nonce = document.querySelector('meta[name="csp-nonce"]');
  if (nonce) {
    // GraphiQL's dialogs add <style> elements at run time; the CSP accepts them with this nonce.
    window.__webpack_nonce__ = nonce.getAttribute("content");
  }

  // --- examples: the editor opens on the login flow; each main operation has its own tab ---

  var LOGIN_FLOW = [
    "# Welcome to the WeChat identity gateway's playground.",
    "#",
    "# The login flow of a mini-program, by hand:",
    "#   1. The mini-program calls wx.login() and sends the code here. In sandbox mode,",
    "#      mint one for a made-up user (or press \"Log in\" in the red panel, which does",
    "#      steps 1 to 3 for you):",
    "#        curl -X POST '" + window.location.origin + (sandboxBase || "/sandbox") +
      "/code?app=shop-mp&user=alice'",
    "#   2. Put the code in the variables below and run LoginByCode (Ctrl-Enter).",
    "#   3. Put the accessToken in the Headers tab:",
    "#        {\"Authorization\": \"Bearer <accessToken>\"}",
    "#   4. Ask who you are: the Viewer tab.",
    "#   5. Before the access token expires, trade the refreshToken for a new pair:",
    "#      the RefreshToken tab (a refresh token works once).",
    "#",
    "# More tabs: BindUnionId, BindPhoneNumber, LoginWithPassword, PartnerLookup.",
    "mutation LoginByCode($app: String!, $code: String!, $state: String) {",
    "  loginByCode(input: {app: $app, code: $code, state: $state, client: {platform: \"devtools\"}}) {",
    "    __typename",
    "    ... on LoginSuccess { accessToken refreshToken expiresAt isNewAccount account { id } }",
    "    ... on Error { code message }",
    "  }",
    "}",
    ""
  ].join("\n");

  var VIEWER = [
    "# Needs Authorization: Bearer <accessToken> in the Headers tab.",
    "query Viewer {",
    "  viewer {",
    "    id",
    "    nickname",
    "    identities { kind linkedAt app { key name } }",
    "    sessions { id platform current lastUsedAt expiresAt }",
    "  }",
    "}",
    ""
  ].join("\n");

  var BIND_UNIONID = [
    "# The data wx.getUserInfo returns, decrypted with the session_key the gateway keeps.",
    "# Sandbox: the panel's \"Open data\" button fills the variables for the logged-in user.",
    "mutation BindUnionId($encryptedData: String!, $iv: String!, $rawData: String, $signature: String) {",
    "  bindUnionId(input: {encryptedData: $encryptedData, iv: $iv, rawData: $rawData, signature: $signature}) {",
    "    __typename",
    "    ... on BindUnionIdSuccess { linked account { id identities { kind app { key } } } }",
    "    ... on Error { code message }",
    "  }",
    "}",
    ""
  ].join("\n");

  var SMS_REQUEST = "mutation($phone: String!, $app: String!) { requestSmsCode(input: " +
    "{phone: $phone, purpose: LOGIN, app: $app}) { __typename ... on Error { code message } } }";
  var SMS_LOGIN = [
    "# A phone number and the SMS code sent to it. Sandbox: the panel's \"SMS code\" button.",
    "mutation LoginBySmsCode($phone: String!, $code: String!, $app: String!) {",
    "  loginBySmsCode(input: {phone: $phone, code: $code, app: $app, client: {platform: \"web\"}}) {",
    "    __typename",
    "    ... on LoginSuccess { accessToken refreshToken isNewAccount account { id } }",
    "    ... on Error { code message }",
    "  }",
    "}",
    ""
  ].join("\n");
  var BIND_PHONE = [
    "# The code from <button open-type=\"getPhoneNumber\">. Sandbox: the panel's \"Phone code\" button.",
    "mutation BindPhoneNumber($code: String!) {",
    "  bindPhoneNumber(input: {code: $code}) {",
    "    __typename",
    "    ... on BindPhoneNumberSuccess { linked account { identities { kind label } } }",
    "    ... on Error { code message }",
    "  }",
    "}",
    ""
  ].join("\n");

  var PASSWORD = [
    "# Username/password accounts. No account yet? Run RegisterWithPassword first",
    "# (with two operations here, the run button asks which one).",
    "mutation LoginWithPassword($username: String!, $password: String!, $app: String!) {",
    "  loginWithPassword(input: {username: $username, password: $password, app: $app, client: {platform: \"devtools\"}}) {",
    "    __typename",
    "    ... on LoginSuccess { accessToken refreshToken expiresAt account { id } }",
    "    ... on RateLimitedError { retryAfterSeconds }",
    "    ... on Error { code message }",
    "  }",
    "}",
    "",
    "mutation RegisterWithPassword($username: String!, $password: String!, $app: String!) {",
    "  registerWithPassword(input: {username: $username, password: $password, app: $app, client: {platform: \"devtools\"}}) {",
    "    __typename",
    "    ... on LoginSuccess { accessToken refreshToken account { id } }",
    "    ... on Error { code message }",
    "  }",
    "}",
    ""
  ].join("\n");

  var REFRESH = [
    "# Rotation: the refresh token is spent by this call; use the new one next time.",
    "mutation RefreshToken($refreshToken: String!) {",
    "  refreshToken(refreshToken: $refreshToken, client: {platform: \"devtools\"}) {",
    "    __typename",
    "    ... on RefreshSuccess { accessToken refreshToken expiresAt refreshExpiresAt account { id } }",
    "    ... on Error { code message }",
    "  }",
    "}",
    ""
  ].join("\n");

  var PARTNER = [
    "# Partner services look accounts up with their own token:",
    "#   curl -u crm:SECRET -d grant_type=client_credentials <gateway>/oauth/token",
    "# then {\"Authorization\": \"Bearer <access_token>\"} in the Headers tab.",
    "query PartnerLookup($app: String!, $openids: [String!]!) {",
    "  partner {",
    "    __typename",
    "    ... on PartnerQuery {",
    "      clientId scopes",
    "      accountsByOpenids(app: $app, openids: $openids) {",
    "        __typename",
    "        ... on BatchLookup { items { key found merged account { id identities { items { kind app { key } openid unionid } } } } }",
    "        ... on Error { code message }",
    "      }",
    "    }",
    "    ... on Error { code message }",
    "  }",
    "}",
    ""
  ].join("\n");

  function json(value) {
    return JSON.stringify(value, null, 2);
  }

  var TABS = [
    { query: LOGIN_FLOW, variables: json({ app: "shop-mp", code: "PASTE-THE-CODE" }) },
    { query: VIEWER },
    { query: BIND_UNIONID, variables: json({ encryptedData: "", iv: "", rawData: "", signature: "" }) },
    { query: BIND_PHONE, variables: json({ code: "" }) },
    { query: PASSWORD, variables: json({ username: "alice", password: "a long passphrase 2024", app: "shop-mp" }) },
    { query: REFRESH, variables: json({ refreshToken: "" }) },
    { query: PARTNER, variables: json({ app: "shop-mp", openids: ["o..."] }) }
  ];

  // GraphiQL's storage. Only the look of the page (theme, pane sizes, the open plugin) is
  // kept in localStorage. History and favourites record each run's variables and headers
  // (passwords, bearer tokens) whatever shouldPersistHeaders says, and the editors hold the
  // same: everything but the look lives in memory for this visit only, so nothing secret is
  // left in the browser. Tabs are not even kept in memory: each visit starts from the examples.
  var KEPT = /^graphiql:(theme|editorFlex|docExplorerFlex|visiblePlugin)$/;
  var memory = {};
  Object.keys(window.localStorage).forEach(function (key) {
    // what an older playground left there
    if (key.indexOf("graphiql:") === 0 && !KEPT.test(key)) window.localStorage.removeItem(key);
  });
  var storage = {
    getItem: function (key) {
      if (KEPT.test(key)) return window.localStorage.getItem(key);
      return Object.prototype.hasOwnProperty.call(memory, key) ? memory[key] : null;
    },
    setItem: function (key, value) {
      if (KEPT.test(key)) window.localStorage.setItem(key, value);
      else if (!/tabState$/.test(key)) memory[key] = String(value);
    },
    removeItem: function (key) {
      if (KEPT.test(key)) window.localStorage.removeItem(key);
      delete memory[key];
    },
    clear: function () {
      Object.keys(window.localStorage).forEach(function (key) {
        if (KEPT.test(key)) window.localStorage.removeItem(key);
      });
      memory = {};
    },
    get length() {
      var kept = Object.keys(window.localStorage).filter(function (key) {
        return KEPT.test(key);
      });
      return kept.length + Object.keys(memory).length;
    }
  };

  // --- GraphiQL, with what the panel may push into its editors ---

  var fetcher = GraphiQL.createFetcher({ url: endpoint });
  var explorer = GraphiQLPluginExplorer.explorerPlugin();
  var show = function () {}; // set by Playground: show({query, variables, headers})
  var current = {}; // what the editors hold now

  function Playground() {
    var pair = React.useState({});
    var editors = pair[0];
    var setEditors = pair[1];
    show = function (patch) {
      setEditors(function (old) {
        return Object.assign({}, old, patch);
      });
    };
    function follow(field) {
      return function (value) {
        // Track the editor, so that pushing an example again is always a change of prop.
        current[field] = value;
        setEditors(function (old) {
          var next = Object.assign({}, old);
          next[field] = value;
          return next;
        });
      };
    }
    return h(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      defaultTabs: TABS,
      storage: storage,
      query: editors.query,
      variables: editors.variables,
      headers: editors.headers,
      defaultHeaders: editors.defaultHeaders,
      onEditQuery: follow("query"),
      onEditVariables: follow("variables"),
      onEditHeaders: follow("headers"),
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      inputValueDeprecation: true
    });
  }

  ReactDOM.createRoot(mount).render(h(Playground));

  if (sandboxBase) {
    sandboxPanel(sandboxBase);
  }

  // --- the sandbox panel: only in sandbox mode (the server renders it only then) ---

  function sandboxPanel(base) {
    var $ = function (id) {
      return document.getElementById(id);
    };
    var status = $("pg-status");
    var session = null; // {app, user, accessToken, refreshToken, account}

    var LOGIN = "mutation($app: String!, $code: String!, $state: String) {\n" +
      "  loginByCode(input: {app: $app, code: $code, state: $state, client: {platform: \"playground\"}}) {\n" +
      "    __typename ... on LoginSuccess { accessToken refreshToken isNewAccount account { id } }\n" +
      "    ... on Error { code message } } }";
    var AUTHORIZE = "query($app: String!, $scope: String) {\n" +
      "  authorizationUrl(app: $app, redirectUri: \"https://example.com/callback\", scope: $scope) {\n" +
      "    __typename ... on AuthorizationUrl { state } ... on Error { code message } } }";
    var ROTATE = "mutation($refreshToken: String!) {\n" +
      "  refreshToken(refreshToken: $refreshToken, client: {platform: \"playground\"}) {\n" +
      "    __typename ... on RefreshSuccess { accessToken refreshToken account { id } }\n" +
      "    ... on Error { code message } } }";
    var START_WEB = "mutation($app: String!) {\n" +
      "  startWebLogin(input: {app: $app, client: {platform: \"playground\"}}) {\n" +
      "    __typename ... on WebLoginStarted { ticket qrImage scene }\n" +
      "    ... on Error { code message } } }";
    var WEB_STATUS = "query($ticket: String!) {\n" +
      "  webLoginStatus(ticket: $ticket, waitSeconds: 10) {\n" +
      "    __typename ... on WebLoginState { status login { accessToken refreshToken account { id } } }\n" +
      "    ... on Error { code message } } }";
    var SCOPES = { official_account: "snsapi_userinfo", website: "snsapi_login" };

    function say(text, isError) {
      status.textContent = text;
      status.className = isError ? "pg-error" : "";
    }

    function choice() {
      var select = $("pg-app");
      var user = $("pg-user").value.trim() || "alice";
      return { app: select.value, kind: select.selectedOptions[0].getAttribute("data-kind"), user: user };
    }

    async function helper(name, params) {
      var query = new URLSearchParams(params).toString();
      var answer = await fetch(base + "/" + name + "?" + query, { method: "POST" });
      var body = await answer.json();
      if (!answer.ok) throw new Error(name + ": " + (body.error || body.errmsg || answer.status));
      return body;
    }

    async function gql(query, variables) {
      var answer = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ query: query, variables: variables })
      });
      var body = await answer.json();
      if (body.errors) throw new Error(body.errors[0].message);
      return body.data;
    }

    function typed(result) {
      if (result.code) throw new Error(result.code + ": " + result.message);
      return result;
    }

    // An OAuth door (official account, website): a signed state first, then the code.
    async function oauthCode(app, kind, user) {
      var scope = SCOPES[kind] || "snsapi_userinfo";
      var url = typed((await gql(AUTHORIZE, { app: app, scope: scope })).authorizationUrl);
      var minted = await helper("code", { app: app, user: user, scope: scope });
      return { app: app, code: minted.code, state: url.state };
    }

    // Bring the example's tab forward (its title is the operation name); if the user closed
    // it, put the example into the current tab instead. Then fill in its variables.
    function openExample(title, query, variables) {
      var buttons = document.querySelectorAll(".graphiql-tab-button");
      var tab = Array.prototype.find.call(buttons, function (b) {
        return b.textContent.trim() === title;
      });
      if (tab) {
        tab.click();
      } else {
        ReactDOM.flushSync(function () {
          show({ query: query });
        });
      }
      if (variables !== undefined) show({ variables: variables });
    }

    function authorize(accessToken) {
      var headers = {};
      try {
        headers = JSON.parse(current.headers || "{}") || {};
      } catch (ignored) {
        headers = {};
      }
      headers.Authorization = "Bearer " + accessToken;
      var text = json(headers);
      // Tabs without headers of their own take the default; then the current tab gets it too.
      ReactDOM.flushSync(function () {
        show({ defaultHeaders: text });
      });
      return function () {
        show({ headers: text });
      };
    }

    async function logIn() {
      var c = choice();
      var vars;
      if (SCOPES[c.kind]) {
        vars = await oauthCode(c.app, c.kind, c.user);
      } else {
        vars = { app: c.app, code: (await helper("code", { app: c.app, user: c.user })).code };
      }
      var login = typed((await gql(LOGIN, vars)).loginByCode);
      session = { app: c.app, user: c.user, accessToken: login.accessToken, refreshToken: login.refreshToken };
      var authorizeTab = authorize(login.accessToken);
      openExample("Viewer", VIEWER);
      authorizeTab();
      status.setAttribute("data-account", login.account.id);
      say((login.isNewAccount ? "New account " : "Account ") + login.account.id + ": " + c.user +
        " is logged in to " + c.app + ". The Authorization header is set; press ▶ to run Viewer.");
    }

    async function refresh() {
      if (!session) throw new Error("log in first");
      var r = typed((await gql(ROTATE, { refreshToken: session.refreshToken })).refreshToken);
      session.accessToken = r.accessToken;
      session.refreshToken = r.refreshToken;
      authorize(r.accessToken)();
      say("Tokens rotated: the old refresh token is spent; the new access token is in the headers.");
    }

    async function openData() {
      var c = choice();
      var d = await helper("open-data", { app: c.app, user: c.user });
      openExample("BindUnionId", BIND_UNIONID, json({ encryptedData: d.encryptedData, iv: d.iv, rawData: d.rawData, signature: d.signature }));
      say("Open data of " + c.user + " on " + c.app + " is in the variables: press ▶ to run BindUnionId" +
        (session ? "." : " (log in first: the data is sealed with the latest session_key)."));
    }

    async function phone() {
      var c = choice();
      var p = await helper("phone-code", { app: c.app, user: c.user, phone: "13800138000" });
      openExample("BindPhoneNumber", BIND_PHONE, json({ code: p.code }));
      say("A getPhoneNumber code for 13800138000 is in the variables: press ▶ to run BindPhoneNumber.");
    }

    // The sandbox SMS provider keeps what it sends: request a code, read it back.
    async function smsCode() {
      var c = choice();
      var number = "13800138000";
      typed((await gql(SMS_REQUEST, { phone: number, app: c.app })).requestSmsCode);
      var answer = await fetch(base + "/sms?phone=" + encodeURIComponent(number));
      var body = await answer.json();
      if (!answer.ok) throw new Error("sms: " + (body.error || answer.status));
      var last = body.messages[body.messages.length - 1];
      openExample("LoginBySmsCode", SMS_LOGIN, json({ phone: number, code: last.code, app: c.app }));
      say("The SMS code sent to " + number + " is in the variables: press ▶ to run LoginBySmsCode.");
    }

    async function oauth() {
      var c = choice();
      var app = SCOPES[c.kind] ? c.app : "news-oa";
      var kind = SCOPES[c.kind] ? c.kind : "official_account";
      var vars = await oauthCode(app, kind, c.user);
      openExample("LoginByCode", LOGIN_FLOW, json(vars));
      say("An OAuth code for " + c.user + " on " + app + " and its state (from authorizationUrl) " +
        "are in the variables: press ▶ to run LoginByCode.");
    }

    // Scan to log in: this browser starts a web login and shows the mini-program code; the
    // sandbox plays the phone (/sandbox/scan: the user logs in to the mini-program and
    // confirms); the browser's long poll then collects the login (its binding cookie).
    async function scan() {
      var c = choice();
      var app = c.kind === "miniprogram" ? c.app : "shop-mp";
      var started = typed((await gql(START_WEB, { app: app })).startWebLogin);
      var code = $("pg-scan-code");
      code.src = started.qrImage;
      code.alt = "mini-program code of " + app + ", scene " + started.scene;
      code.hidden = false;
      say("This browser shows " + app + "'s code (scene " + started.scene + "); " + c.user +
        " scans it and confirms…");
      await helper("scan", { scene: started.scene, user: c.user });
      var state = typed((await gql(WEB_STATUS, { ticket: started.ticket })).webLoginStatus);
      if (!state.login) throw new Error("scan login: " + state.status);
      var login = state.login;
      session = { app: app, user: c.user, accessToken: login.accessToken, refreshToken: login.refreshToken };
      var authorizeTab = authorize(login.accessToken);
      openExample("Viewer", VIEWER);
      authorizeTab();
      status.setAttribute("data-account", login.account.id);
      say("Scanned and confirmed: account " + login.account.id + " (" + c.user + " on " + app +
        ") is logged in to this browser. The Authorization header is set; press ▶ to run Viewer.");
    }

    function button(id, action) {
      var b = $(id);
      b.addEventListener("click", async function () {
        b.disabled = true;
        try {
          await action();
        } catch (e) {
          say(e.message, true);
        } finally {
          b.disabled = false;
        }
      });
    }

    button("pg-login", logIn);
    button("pg-refresh", refresh);
    button("pg-open-data", openData);
    button("pg-phone", phone);
    button("pg-sms", smsCode);
    button("pg-oauth", oauth);
    button("pg-scan", scan);
    webhooks(base);
  }

  // --- the sandbox's webhook receiver: the last deliveries, with their signature check ---

  function webhooks(base) {
    var list = document.getElementById("pg-deliveries");
    var count = document.getElementById("pg-webhook-count");
    var shown = "";

    function line(d) {
      var item = document.createElement("li");
      var check = d.verified ? "\u2713 signature verified" : "\u2717 " + (d.problem || "refused");
      item.className = d.verified ? "pg-verified" : "pg-refused";
      var summary = document.createElement("summary");
      summary.textContent = check + " \u00b7 " + (d.type || "?") + " \u00b7 " + d.receivedAt +
        " \u00b7 webhook-id " + (d.webhookId || "none");
      var body = document.createElement("pre");
      body.textContent = json(d.body);
      var details = document.createElement("details");
      details.appendChild(summary);
      details.appendChild(body);
      item.appendChild(details);
      return item;
    }

    async function poll() {
      try {
        var answer = await fetch(base + "/webhooks", { headers: { accept: "application/json" } });
        var deliveries = (await answer.json()).deliveries || [];
        var key = deliveries.map(function (d) { return d.receivedAt + d.webhookId; }).join();
        if (key === shown) return;
        shown = key;
        count.textContent = String(deliveries.length);
        list.replaceChildren.apply(list, deliveries.map(line));
      } catch (ignored) {
        // the gateway restarts or stops: the next poll tries again
      }
    }

    poll();
    setInterval(poll, 3000);
  }
})();
