CREATE TABLE "answered_challenges" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"answered_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
DROP TABLE "upload_challenges" CASCADE;--> statement-breakpoint
ALTER TABLE "answered_challenges" ADD CONSTRAINT "answered_challenges_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "answered_challenges_expires_idx" ON "answered_challenges" USING btree ("expires_at");--> statement-breakpoint
-- An instant upload's claim (U4) in one statement: the challenge (from its sealed token) was checked
-- by the server, the proof compared with the right answer; this records the answer and adds the asset,
-- in the order of locks UploadService's general path takes: the blob, the user, the user's asset.
--   one row:   the asset (new, or the one the user already had for these bytes);
--   no row:    the proof was wrong (the challenge is used up all the same);
--   PX001:     refused, the message says why, nothing changed: CHALLENGE_USED, NOT_STORED (the bytes
--              were collected), NOT_FOUND (no such user), SLOW_PATH (the quota needs a look: the
--              general path decides).
CREATE FUNCTION pixshare_claim_upload(
  p_challenge uuid, p_expires timestamptz, p_user uuid, p_device uuid, p_sha256 text, p_name text, p_folder uuid,
  p_taken_at timestamptz, p_proven boolean, p_level text, p_quota bigint, p_channel text, p_payload text
) RETURNS SETOF assets LANGUAGE plpgsql
-- Its statements are key lookups: planned once per connection, not at each of the first calls.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  b blobs;
  u users;
  a assets;
BEGIN
  INSERT INTO answered_challenges (id, user_id, expires_at) VALUES (p_challenge, p_user, p_expires) ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN RAISE EXCEPTION 'CHALLENGE_USED' USING ERRCODE = 'PX001'; END IF;
  IF NOT p_proven THEN RETURN; END IF;
  SELECT * INTO b FROM blobs WHERE sha256 = p_sha256 AND stored FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'NOT_STORED' USING ERRCODE = 'PX001'; END IF;
  SELECT * INTO u FROM users WHERE id = p_user FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'NOT_FOUND' USING ERRCODE = 'PX001'; END IF;
  SELECT * INTO a FROM assets WHERE user_id = p_user AND sha256 = p_sha256;
  IF NOT FOUND THEN
    IF u.level <> p_level OR u.used_bytes + b.size > p_quota THEN RAISE EXCEPTION 'SLOW_PATH' USING ERRCODE = 'PX001'; END IF;
    INSERT INTO assets (user_id, sha256, name, size, mime_type, width, height, taken_at, phash, thumbnail_status, device_id, origin)
      VALUES (p_user, b.sha256, p_name, b.size, b.mime_type, b.width, b.height, coalesce(b.taken_at, p_taken_at), b.phash, b.thumbnail_status, p_device, 'instant')
      RETURNING * INTO a;
    UPDATE blobs SET ref_count = ref_count + 1, gc_after = NULL WHERE sha256 = b.sha256;
    UPDATE users SET used_bytes = used_bytes + b.size WHERE id = p_user;
  END IF;
  IF p_folder IS NOT NULL THEN
    BEGIN
      -- The user's own folder only; one deleted since the check is skipped.
      INSERT INTO folder_assets (folder_id, asset_id) SELECT f.id, a.id FROM folders f WHERE f.id = p_folder AND f.user_id = p_user ON CONFLICT DO NOTHING;
    EXCEPTION WHEN foreign_key_violation THEN NULL; -- deleted at this very moment
    END;
  END IF;
  PERFORM pg_notify(p_channel, p_payload);
  RETURN NEXT a;
END
$$;
