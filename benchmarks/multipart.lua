-- wrk script: POST one image as multipart field "file".
-- usage: wrk -s multipart.lua URL -- PHOTO PATH
function init(args)
  local handle = assert(io.open(args[1], "rb"))
  local data = handle:read("*all")
  handle:close()
  local boundary = "----recognizer-benchmark"
  wrk.method = "POST"
  wrk.path = args[2]
  wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
  wrk.body = "--" .. boundary .. "\r\n"
    .. "Content-Disposition: form-data; name=\"file\"; filename=\"photo.jpg\"\r\n"
    .. "Content-Type: image/jpeg\r\n\r\n" .. data .. "\r\n--" .. boundary .. "--\r\n"
end
