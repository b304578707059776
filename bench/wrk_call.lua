-- wrk script: POST /call with the README's body (one uuid: each request replaces the entry,
-- so the registry's size stays constant and local and Redis runs compare like for like).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"uuid":"935652e3-7c59-4edc-b17f-9646a9c2a265","payload":{"from":"2000","to":"5001","uniqueid":"1770758888.32","channel":"PJSIP/2000-00000013"}}'
