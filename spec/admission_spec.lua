-- The admission rule on its own (sentry.admission over the process-memory
-- store), on a clock the spec sets: the decisions every store makes.
local budget_stores = require "sentry.budget_stores"

local MAX_WAIT, MARGIN = 60, 0.1
local T = 1800000000 -- a window ends here (server clock)

describe("the admission rule", function()
  local store, prefix

  before_each(function()
    store = budget_stores.memory()
    prefix = "p" .. tostring(math.random(1, 1e9)) .. ":"
  end)

  local function admit(now, max_wait)
    return store:admit(prefix, now, max_wait or MAX_WAIT, MARGIN)
  end

  it("lets one request go first, the others ask again until it answers", function()
    assert.are.equal("send", (admit(T - 0.5)))
    local action, wait, reason = admit(T - 0.5)
    assert.are.equal("ask_again", action)
    assert.is_true(wait > 0 and wait < 1)
    assert.are.equal("probe", reason)
    store:learn(prefix, T - 0.5, T, 10, 9, nil, nil, true, false)
    assert.are.equal("send", (admit(T - 0.5)))
  end)

  it("admits Remaining in the current window, then slots spread over the next, in order", function()
    store:learn(prefix, T - 0.5, T, 10, 5, nil, nil, true, false) -- 5 already used this window
    for _ = 1, 5 do assert.are.equal("send", (admit(T - 0.5))) end
    local previous = 0
    for k = 1, 10 do
      local action, wait = admit(T - 0.5)
      assert.are.equal("reserved", action)
      -- the k-th of 10 in the window [T, T + 1): margin at both ends, evenly apart
      assert.is_true(wait > previous, "slot " .. k)
      previous = wait
      assert.is_true(wait >= 0.5 + MARGIN - 1e-6 and wait < 1.5 - MARGIN + 1e-6, "slot " .. k .. " at " .. wait)
    end
    -- the window after that: its end is not known yet, so ask again once it is
    local action, wait = admit(T - 0.5)
    assert.are.equal("ask_again", action)
    assert.is_true(wait >= 0.5)
  end)

  it("books windows ahead once two window ends told the window's length", function()
    store:learn(prefix, T - 0.5, T, 10, 0, nil, nil, true, false)
    store:learn(prefix, T + 0.2, T + 1, 10, 9, nil, nil, true, false) -- the window is 1 s long
    local last
    for _ = 1, 9 do assert.are.equal("send", (admit(T + 0.2))) end
    for _ = 1, 25 do
      local action, wait = admit(T + 0.2)
      assert.are.equal("reserved", action)
      last = wait
    end
    -- 25 more at 10 a window: the last one is in the third window after the
    -- current one, [T + 3, T + 4), the 5th of its slots
    assert.is_true(math.abs(last - (3 + MARGIN + 4 * 0.08 - 0.2)) < 1e-6, "the 25th waits " .. last)
  end)

  it("refuses at once a slot further away than max_wait, and gives the slot back", function()
    store:learn(prefix, T - 0.5, T, 10, 0, nil, nil, true, false)
    local action, wait = admit(T - 0.5, 0.3)
    assert.are.equal("refuse", action)
    assert.is_true(wait > 0.3)
    -- with a longer max_wait the first slot of the next window is still free
    local again, first = admit(T - 0.5)
    assert.are.equal("reserved", again)
    assert.is_true(math.abs(first - (0.5 + MARGIN)) < 1e-6, "the first slot waits " .. first)
  end)

  it("counts what the server counted: Remaining from any caller lowers the window", function()
    store:learn(prefix, T - 0.5, T, 10, 10, nil, nil, true, false)
    store:learn(prefix, T - 0.4, T, 10, 2, nil, nil, true, false) -- others spent 8
    assert.are.equal("send", (admit(T - 0.4)))
    assert.are.equal("send", (admit(T - 0.4)))
    assert.are.equal("reserved", (admit(T - 0.4)))
  end)

  it("sends at once at a window's edge, counted in that window and the next", function()
    store:learn(prefix, T - 0.5, T, 10, 9, nil, nil, true, false)
    -- within the margin of the end, the server may count it in either window
    assert.are.equal("send", (admit(T - MARGIN / 2)))
    for _ = 1, 8 do assert.are.equal("send", (admit(T - 0.5))) end -- the window's 10 are used
    -- the next window's first slot went to the request at the edge: this one gets the second
    local action, wait = admit(T - 0.5)
    assert.are.equal("reserved", action)
    assert.is_true(math.abs(wait - (0.5 + MARGIN + (1 - 2 * MARGIN) / 10)) < 1e-6, "waits " .. wait)
  end)

  it("at a window's edge, either side, sends when both windows have room, else waits", function()
    local admission = require "sentry.admission"
    -- the rule over a plain table, to set up counts no sequence of responses gives
    local function decide(state, now)
      local ops = {
        get = function(_, name) return state[name] end,
        set = function(_, name, value) state[name] = value end,
        add = function(_, name, value)
          if state[name] ~= nil then return false end
          state[name] = value
          return true
        end,
        incr = function(_, name, delta)
          state[name] = (state[name] or 0) + delta
          return state[name]
        end,
        delete = function(_, name) state[name] = nil end,
      }
      return admission.admit(ops, "", now or T - MARGIN / 2, MAX_WAIT, MARGIN)
    end
    local window, next_window = "n:" .. T, "n:" .. (T + 1)
    local state = { ["end"] = T, limit = 2, span = 1, [window] = 1, [next_window] = 0 }
    assert.are.equal("send", (decide(state)))
    assert.are.same({ 2, 1 }, { state[window], state[next_window] })
    state = { ["end"] = T, limit = 2, span = 1, [window] = 2, [next_window] = 0 } -- this window used up
    assert.are.equal("reserved", (decide(state)))
    state = { ["end"] = T, limit = 2, span = 1, [window] = 0, [next_window] = 2 } -- the next one booked
    assert.are_not.equal("send", (decide(state)))
    assert.are.same({ 0, 2 }, { state[window], state[next_window] }) -- the place taken here is given back
    -- just past the end, before any response told the next window: the same, not a slot margin away
    state = { ["end"] = T, limit = 40, [window] = 1, ["after:" .. T] = 7 }
    assert.are.equal("send", (decide(state, T + MARGIN / 2)))
    assert.are.same({ 2, 8 }, { state[window], state["after:" .. T] })
  end)

  it("treats an endpoint without limits, or with a Reset long past, as open", function()
    store:learn(prefix, T, nil, nil, nil, nil, nil, true, false)
    for _ = 1, 50 do assert.are.equal("send", (admit(T))) end
    local other = prefix .. "stale:"
    store:learn(other, T, T - 3600, 40, 39, nil, nil, true, false)
    for _ = 1, 50 do assert.are.equal("send", (store:admit(other, T, MAX_WAIT, MARGIN))) end
  end)

  it("frees the probe when the first request gets no answer", function()
    assert.are.equal("send", (admit(T)))
    assert.are.equal("ask_again", (admit(T)))
    store:learn(prefix, T, nil, nil, nil, nil, nil, false, false)
    assert.are.equal("send", (admit(T)))
  end)

  it("holds requests in flight to ConcurrentLimit, counting those before the limit was known", function()
    assert.is_true(store:enter(prefix))
    assert.is_true(store:enter(prefix))
    store:learn(prefix, T, nil, nil, nil, 2, nil, true, true) -- one answered: one still in flight
    assert.is_true(store:enter(prefix))
    assert.is_false(store:enter(prefix))
    store:learn(prefix, T, nil, nil, nil, 2, nil, true, true)
    assert.is_true(store:enter(prefix))
  end)

  it("leaves the places others hold: ConcurrentRemaining lowers the limit", function()
    assert.is_true(store:enter(prefix))
    -- 5 allowed, 2 more free when it answered: 3 held elsewhere, 1 of them ours
    store:learn(prefix, T, nil, nil, nil, 5, 2, true, false)
    assert.is_true(store:enter(prefix))
    assert.is_true(store:enter(prefix))
    assert.is_false(store:enter(prefix))
  end)
end)
