ALTER TABLE "upload_challenges" ADD COLUMN "expected" text;--> statement-breakpoint
-- An instant upload's claim (U4) in one statement, for challenges whose expected answer was worked
-- out when they were made. It does what UploadService.claimUpload's general path does, in the
-- same order of locks: the challenge, the blob, the user, then the user's asset for the hash.
--   one row:   the asset (new, or the one the user already had for these bytes);
--   no row:    the proof was wrong (the challenge is used up all the same);
--   PX001:     refused, the message is the reason, nothing changed: NOT_FOUND (no such challenge of
--              this user), CHALLENGE_USED, CHALLENGE_EXPIRED, NOT_STORED (the bytes were collected),
--              SLOW_PATH (no expected answer, or the quota needs a look: the general path decides).
-- A plain comparison of the proof is fine: a challenge takes one answer, so timing reveals nothing usable.
CREATE FUNCTION pixshare_claim_upload(
  p_challenge uuid, p_user uuid, p_device uuid, p_proof text, p_level text, p_quota bigint, p_channel text, p_payload text
) RETURNS SETOF assets LANGUAGE plpgsql
-- Its statements are key lookups: planned once per connection, not at each of the first calls.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  c upload_challenges;
  b blobs;
  u users;
  a assets;
BEGIN
  SELECT * INTO c FROM upload_challenges WHERE id = p_challenge AND user_id = p_user FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'NOT_FOUND' USING ERRCODE = 'PX001'; END IF;
  IF c.expected IS NULL THEN RAISE EXCEPTION 'SLOW_PATH' USING ERRCODE = 'PX001'; END IF;
  IF c.used_at IS NOT NULL THEN RAISE EXCEPTION 'CHALLENGE_USED' USING ERRCODE = 'PX001'; END IF;
  IF c.expires_at < now() THEN RAISE EXCEPTION 'CHALLENGE_EXPIRED' USING ERRCODE = 'PX001'; END IF;
  IF p_proof IS DISTINCT FROM c.expected THEN
    UPDATE upload_challenges SET used_at = now(), attempts = attempts + 1 WHERE id = c.id;
    RETURN;
  END IF;
  SELECT * INTO b FROM blobs WHERE sha256 = c.sha256 AND stored FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'NOT_STORED' USING ERRCODE = 'PX001'; END IF;
  SELECT * INTO u FROM users WHERE id = p_user FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'NOT_FOUND' USING ERRCODE = 'PX001'; END IF;
  SELECT * INTO a FROM assets WHERE user_id = p_user AND sha256 = c.sha256;
  IF NOT FOUND THEN
    IF u.level <> p_level OR u.used_bytes + b.size > p_quota THEN RAISE EXCEPTION 'SLOW_PATH' USING ERRCODE = 'PX001'; END IF;
    INSERT INTO assets (user_id, sha256, name, size, mime_type, width, height, taken_at, phash, thumbnail_status, device_id, origin)
      VALUES (p_user, b.sha256, c.name, b.size, b.mime_type, b.width, b.height, coalesce(b.taken_at, c.taken_at), b.phash, b.thumbnail_status, p_device, 'instant')
      RETURNING * INTO a;
    UPDATE blobs SET ref_count = ref_count + 1, gc_after = NULL WHERE sha256 = b.sha256;
    UPDATE users SET used_bytes = used_bytes + b.size WHERE id = p_user;
  END IF;
  UPDATE upload_challenges SET used_at = now(), attempts = attempts + 1 WHERE id = c.id;
  IF c.folder_id IS NOT NULL THEN
    INSERT INTO folder_assets (folder_id, asset_id) VALUES (c.folder_id, a.id) ON CONFLICT DO NOTHING;
  END IF;
  PERFORM pg_notify(p_channel, p_payload);
  RETURN NEXT a;
END
$$;
