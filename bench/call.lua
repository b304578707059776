-- wrk script: POST /call with a distinct uuid per request (the dialplan's body shape).
local counter = 0
request = function()
  counter = counter + 1
  local id = string.format("%08x-7c59-4edc-b17f-%012x", math.random(0, 0x7fffffff), counter)
  local body = '{"uuid":"' .. id .. '","payload":{"from":"2000","to":"5001","uniqueid":"1770758888.32","channel":"PJSIP/2000-00000013"}}'
  return wrk.format("POST", "/call", {["Content-Type"] = "application/json"}, body)
end
