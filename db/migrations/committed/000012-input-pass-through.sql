--! Previous: sha1:09fc783864806cdac328035b4c96cf287bd6bc05
--! Hash: sha1:4fa6e319ae659ca6bb17ba62d3a7c6fd151f8887

-- Input URLs are passed through: the URL of a node_map "file" entry becomes
-- the fieldValue and RunningHub fetches it (its docs say to pass a public URL
-- above its 30 MB upload cap; the production product did so for images and
-- video). An entry with "upload": true is fetched by rhpool instead, under
-- the input policy (public addresses only, a byte cap, a deadline), and
-- uploaded with the running account's key. The flag must be a JSON boolean:
-- a string "true" would silently pass the URL through.
alter table rhpool.tools drop constraint if exists tools_node_map_upload_is_boolean;
alter table rhpool.tools add constraint tools_node_map_upload_is_boolean
  check (not jsonb_path_exists(node_map, '$[*] ? (exists(@.upload) && @.upload.type() != "boolean")'));

comment on column rhpool.tools.node_map is
  'nodeInfoList entries: {nodeId, fieldName} with column, value or file [url column, file name column]; optional skips an empty column; a file URL is passed to RunningHub as fieldValue unless "upload": true (then rhpool fetches and uploads it).';
