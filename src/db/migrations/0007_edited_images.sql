CREATE TABLE "edited_images" (
	"sha256" text NOT NULL,
	"rule_key" text NOT NULL,
	"key" text NOT NULL,
	"media_type" text NOT NULL,
	"size" bigint NOT NULL,
	"width" integer NOT NULL,
	"height" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "edited_images_sha256_rule_key_pk" PRIMARY KEY("sha256","rule_key")
);
--> statement-breakpoint
ALTER TABLE "edited_images" ADD CONSTRAINT "edited_images_sha256_blobs_sha256_fk" FOREIGN KEY ("sha256") REFERENCES "public"."blobs"("sha256") ON DELETE cascade ON UPDATE no action;