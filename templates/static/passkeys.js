// Passkey ceremonies for the login, registration and sign-in methods pages.
//
// Each <section class="passkey" data-ceremony="get|create"> contains a form with
// hidden "ceremony" and "credential" inputs, a button with data-passkey-start
// and an element with data-passkey-error. The script fetches the options from
// data-options-url (JSON, CSRF token in a header), runs the WebAuthn
// ceremony, and submits the form with the browser's response as JSON.
// Messages come from data-msg-* attributes, so the page translates them.
"use strict";

(function () {
  function toBase64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (let i = 0; i < bytes.length; i += 1) {
      text += String.fromCharCode(bytes[i]);
    }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromBase64url(text) {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function withBinaryIds(descriptors) {
    return (descriptors || []).map(function (item) {
      return Object.assign({}, item, { id: fromBase64url(item.id) });
    });
  }

  function creationOptions(json) {
    const options = Object.assign({}, json);
    options.challenge = fromBase64url(json.challenge);
    options.user = Object.assign({}, json.user, { id: fromBase64url(json.user.id) });
    options.excludeCredentials = withBinaryIds(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    const options = Object.assign({}, json);
    options.challenge = fromBase64url(json.challenge);
    options.allowCredentials = withBinaryIds(json.allowCredentials);
    return options;
  }

  function credentialJSON(credential) {
    const response = credential.response;
    const json = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: toBase64url(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      json.response.attestationObject = toBase64url(response.attestationObject);
      if (typeof response.getTransports === "function") {
        json.response.transports = response.getTransports();
      }
    } else {
      json.response.authenticatorData = toBase64url(response.authenticatorData);
      json.response.signature = toBase64url(response.signature);
      if (response.userHandle) {
        json.response.userHandle = toBase64url(response.userHandle);
      }
    }
    return JSON.stringify(json);
  }

  function ServerRejection(message) {
    this.name = "ServerRejection";
    this.message = message;
  }

  async function fetchOptions(section, form) {
    const body = {};
    const usernameInput = section.dataset.usernameInput;
    if (usernameInput) {
      body.username = document.getElementById(usernameInput).value;
    }
    let reply;
    try {
      reply = await fetch(section.dataset.optionsUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          "X-CSRF-Token": form.elements.csrf_token.value,
        },
        body: JSON.stringify(body),
      });
    } catch (error) {
      throw new ServerRejection(section.dataset.msgNetwork);
    }
    let data = {};
    try {
      data = await reply.json();
    } catch (error) {
      data = {};
    }
    if (!reply.ok || !data.publicKey) {
      throw new ServerRejection(data.error || section.dataset.msgServer);
    }
    return data;
  }

  function describe(section, error) {
    if (error instanceof ServerRejection) {
      return error.message;
    }
    if (error.name === "NotAllowedError") {
      return section.dataset.msgCancelled;
    }
    if (error.name === "InvalidStateError") {
      return section.dataset.msgRegistered;
    }
    if (error.name === "SecurityError") {
      return section.dataset.msgSecurity;
    }
    return section.dataset.msgFailed + " (" + error.name + ")";
  }

  function showError(section, message) {
    const target = section.querySelector("[data-passkey-error]");
    target.textContent = message;
    target.hidden = false;
  }

  async function runCeremony(section, form, mediation, signal) {
    const data = await fetchOptions(section, form);
    let credential;
    if (section.dataset.ceremony === "create") {
      credential = await navigator.credentials.create({
        publicKey: creationOptions(data.publicKey),
      });
    } else {
      const request = { publicKey: requestOptions(data.publicKey) };
      if (mediation) {
        request.mediation = mediation;
        request.signal = signal;
      }
      credential = await navigator.credentials.get(request);
    }
    form.elements.ceremony.value = data.ceremony;
    form.elements.credential.value = credentialJSON(credential);
    if (section.dataset.usernameInput && form.elements.username) {
      // Shown again in the username field if the server rejects the passkey.
      const source = document.getElementById(section.dataset.usernameInput);
      form.elements.username.value = source.value;
    }
    form.submit();
  }

  function setUp(section) {
    const form = section.querySelector("form");
    const button = section.querySelector("[data-passkey-start]");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      showError(section, section.dataset.msgUnsupported);
      button.disabled = true;
      section.hidden = false;
      return;
    }
    section.hidden = false;
    let conditional = null;

    button.addEventListener("click", async function () {
      if (conditional) {
        conditional.abort();
        conditional = null;
      }
      const check = section.querySelector("[data-passkey-error]");
      check.hidden = true;
      button.disabled = true;
      try {
        await runCeremony(section, form, null, null);
      } catch (error) {
        showError(section, describe(section, error));
        button.disabled = false;
      }
    });

    if (section.dataset.conditional !== "true") {
      return;
    }
    const available = PublicKeyCredential.isConditionalMediationAvailable;
    if (typeof available !== "function") {
      return;
    }
    available.call(PublicKeyCredential).then(function (supported) {
      if (!supported) {
        return;
      }
      conditional = new AbortController();
      runCeremony(section, form, "conditional", conditional.signal).catch(
        function () {
          // The user did not pick a passkey from the autofill list, or the
          // request was aborted for the button; the button still works.
        }
      );
    });
  }

  document.querySelectorAll("section.passkey").forEach(setUp);
})();
