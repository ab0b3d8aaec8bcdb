from keras_vae_cli import main

main()
